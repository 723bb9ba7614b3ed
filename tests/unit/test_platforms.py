"""Platform parsing and normalization, table-tested the way buildx normalizes."""

from __future__ import annotations

import pytest

from crossplan.errors import EXIT_USAGE, RecipeError
from crossplan.platforms import SUPPORTED, Platform, build_platform, parse_platforms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", "linux/amd64"),
        ("amd64", "linux/amd64"),
        ("x86_64", "linux/amd64"),
        ("linux/amd64/v1", "linux/amd64"),
        ("arm64", "linux/arm64"),
        ("aarch64", "linux/arm64"),
        ("linux/arm64", "linux/arm64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("armhf", "linux/arm/v7"),
        ("arm", "linux/arm/v7"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/v7", "linux/arm/v7"),
        ("armel", "linux/arm/v6"),
        ("linux/arm/v6", "linux/arm/v6"),
        ("riscv64", "linux/riscv64"),
        ("i386", "linux/386"),
        ("386", "linux/386"),
        ("ppc64le", "linux/ppc64le"),
        ("s390x", "linux/s390x"),
        ("LINUX/ARM64", "linux/arm64"),
        (" arm64 ", "linux/arm64"),
    ],
)
def test_parse_normalizes(text: str, expected: str) -> None:
    assert str(Platform.parse(text)) == expected


def test_equivalent_spellings_are_equal_values() -> None:
    a, b, c = (Platform.parse(t) for t in ("arm64", "linux/arm64", "linux/arm64/v8"))
    assert a == b == c
    assert hash(a) == hash(c)
    assert a == Platform("linux", "arm64")


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("linux/arm65", "linux/arm64"),
        ("linux/riscv46", "linux/riscv64"),
        ("windows/amd64", "linux/amd64"),
        ("linux/arm/v5", "linux/arm/v7"),
    ],
)
def test_unknown_platform_suggests_closest(text: str, suggestion: str) -> None:
    with pytest.raises(RecipeError) as info:
        Platform.parse(text)
    exc = info.value
    assert exc.exit_code == EXIT_USAGE
    assert f"'{text}'" in exc.message
    assert exc.hint == f"did you mean '{suggestion}'?"
    assert f"did you mean '{suggestion}'?" in str(exc)


def test_unknown_platform_without_close_match_lists_supported() -> None:
    with pytest.raises(RecipeError) as info:
        Platform.parse("mips")
    assert info.value.hint is not None
    for p in SUPPORTED:
        assert p in info.value.hint


def test_every_supported_platform_round_trips() -> None:
    for text in SUPPORTED:
        assert str(Platform.parse(text)) == text


@pytest.mark.parametrize(
    ("text", "slug", "arch_variant"),
    [
        ("linux/amd64", "linux_amd64", "amd64"),
        ("linux/arm/v7", "linux_arm_v7", "armv7"),
    ],
)
def test_slug_and_arch_variant(text: str, slug: str, arch_variant: str) -> None:
    p = Platform.parse(text)
    assert p.slug == slug
    assert p.arch_variant == arch_variant


def test_build_args_are_buildx_names() -> None:
    assert Platform.parse("linux/arm/v7").build_args("TARGET") == {
        "TARGETPLATFORM": "linux/arm/v7",
        "TARGETOS": "linux",
        "TARGETARCH": "arm",
        "TARGETVARIANT": "v7",
    }
    assert Platform.parse("amd64").build_args("BUILD")["BUILDVARIANT"] == ""


def test_parse_platforms_dedupes_after_normalizing_and_keeps_order() -> None:
    got = parse_platforms("arm64,linux/amd64,linux/arm64/v8, ,aarch64")
    assert [str(p) for p in got] == ["linux/arm64", "linux/amd64"]
    assert parse_platforms(["armhf", "linux/arm/v7"]) == (Platform("linux", "arm", "v7"),)


def test_build_platform_is_supported() -> None:
    assert str(build_platform()) in SUPPORTED
