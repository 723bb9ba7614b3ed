"""Toolchain settings are pure functions of a platform: Go, Rust, zig, gcc, Debian, QEMU."""

from __future__ import annotations

import pytest

from crossplan.backends.toolchains.cc import arch_flags
from crossplan.backends.toolchains.go import go_env
from crossplan.backends.toolchains.rust import missing_std, rust_triple
from crossplan.backends.toolchains.targets import (
    cmake_processor,
    debian_arch,
    gnu_triple,
    qemu_arch,
    wheel_arch,
    zig_target,
)
from crossplan.errors import RecipeError
from crossplan.platforms import SUPPORTED, Platform

P = Platform.parse


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("linux/amd64", {"GOOS": "linux", "GOARCH": "amd64"}),
        ("linux/arm64", {"GOOS": "linux", "GOARCH": "arm64"}),
        ("linux/arm/v7", {"GOOS": "linux", "GOARCH": "arm", "GOARM": "7"}),
        ("linux/arm/v6", {"GOOS": "linux", "GOARCH": "arm", "GOARM": "6"}),
        ("linux/386", {"GOOS": "linux", "GOARCH": "386", "GO386": "sse2"}),
        ("linux/riscv64", {"GOOS": "linux", "GOARCH": "riscv64"}),
        ("linux/ppc64le", {"GOOS": "linux", "GOARCH": "ppc64le"}),
        ("linux/s390x", {"GOOS": "linux", "GOARCH": "s390x"}),
    ],
)
def test_go_env(platform: str, expected: dict[str, str]) -> None:
    assert go_env(P(platform)) == expected


def test_go_env_amd64_level_and_unknown() -> None:
    assert go_env(Platform("linux", "amd64", "v3"))["GOAMD64"] == "v3"
    with pytest.raises(RecipeError):
        go_env(Platform("linux", "mips", ""))


@pytest.mark.parametrize(
    ("platform", "gnu", "musl"),
    [
        ("linux/amd64", "x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl"),
        ("linux/arm64", "aarch64-unknown-linux-gnu", "aarch64-unknown-linux-musl"),
        ("linux/arm/v7", "armv7-unknown-linux-gnueabihf", "armv7-unknown-linux-musleabihf"),
        ("linux/arm/v6", "arm-unknown-linux-gnueabihf", "arm-unknown-linux-musleabihf"),
        ("linux/386", "i686-unknown-linux-gnu", "i686-unknown-linux-musl"),
        ("linux/riscv64", "riscv64gc-unknown-linux-gnu", "riscv64gc-unknown-linux-musl"),
        ("linux/ppc64le", "powerpc64le-unknown-linux-gnu", "powerpc64le-unknown-linux-musl"),
        ("linux/s390x", "s390x-unknown-linux-gnu", "s390x-unknown-linux-musl"),
    ],
)
def test_rust_triple(platform: str, gnu: str, musl: str) -> None:
    assert rust_triple(P(platform)) == gnu
    assert rust_triple(P(platform), "musl") == musl


def test_missing_std_fix_text() -> None:
    assert missing_std(P("linux/arm64")) == (
        "no Rust std for aarch64-unknown-linux-gnu: `rustup target add aarch64-unknown-linux-gnu`"
        ", or on Debian `apt install libstd-rust-dev:arm64`"
    )
    assert "libstd-rust-dev:armhf" in missing_std(P("linux/arm/v7"))
    # Debian ships no std for ARMv6 hard-float, nor for musl: only rustup can help.
    assert "Debian" not in missing_std(P("linux/arm/v6"))
    assert "Debian" not in missing_std(P("linux/arm64"), "musl")


@pytest.mark.parametrize(
    ("platform", "musl", "gnu"),
    [
        ("linux/amd64", "x86_64-linux-musl", "x86_64-linux-gnu"),
        ("linux/arm64", "aarch64-linux-musl", "aarch64-linux-gnu"),
        ("linux/arm/v7", "arm-linux-musleabihf", "arm-linux-gnueabihf"),
        ("linux/arm/v6", "arm-linux-musleabihf", "arm-linux-gnueabihf"),
        ("linux/386", "x86-linux-musl", "x86-linux-gnu"),
        ("linux/riscv64", "riscv64-linux-musl", "riscv64-linux-gnu"),
        ("linux/ppc64le", "powerpc64le-linux-musl", "powerpc64le-linux-gnu"),
        ("linux/s390x", "s390x-linux-musl", "s390x-linux-gnu"),
    ],
)
def test_zig_target(platform: str, musl: str, gnu: str) -> None:
    assert zig_target(P(platform)) == musl
    assert zig_target(P(platform), "gnu") == gnu


@pytest.mark.parametrize(
    ("platform", "gnu", "deb", "qemu", "cmake", "wheel"),
    [
        ("linux/amd64", "x86_64-linux-gnu", "amd64", "x86_64", "x86_64", "x86_64"),
        ("linux/arm64", "aarch64-linux-gnu", "arm64", "aarch64", "aarch64", "aarch64"),
        ("linux/arm/v7", "arm-linux-gnueabihf", "armhf", "arm", "armv7l", "armv7l"),
        ("linux/arm/v6", "arm-linux-gnueabihf", "armhf", "arm", "armv6l", "armv7l"),
        ("linux/386", "i686-linux-gnu", "i386", "i386", "i686", "i686"),
        ("linux/riscv64", "riscv64-linux-gnu", "riscv64", "riscv64", "riscv64", "riscv64"),
        ("linux/ppc64le", "powerpc64le-linux-gnu", "ppc64el", "ppc64le", "ppc64le", "ppc64le"),
        ("linux/s390x", "s390x-linux-gnu", "s390x", "s390x", "s390x", "s390x"),
    ],
)
def test_gnu_debian_qemu_tables(
    platform: str, gnu: str, deb: str, qemu: str, cmake: str, wheel: str
) -> None:
    p = P(platform)
    assert (gnu_triple(p), debian_arch(p), qemu_arch(p)) == (gnu, deb, qemu)
    assert (cmake_processor(p), wheel_arch(p)) == (cmake, wheel)


def test_every_supported_platform_has_every_mapping() -> None:
    for text in SUPPORTED:
        p = P(text)
        assert go_env(p) and rust_triple(p) and zig_target(p) and gnu_triple(p)


def test_unknown_platform_is_a_recipe_error_naming_the_choices() -> None:
    with pytest.raises(RecipeError, match="linux/arm/v7"):
        gnu_triple(Platform("linux", "mips64", ""))


def test_arch_flags_only_for_armv6() -> None:
    assert arch_flags(P("linux/arm/v6"), "zig") == ("-mcpu=arm1176jzf_s",)
    assert arch_flags(P("linux/arm/v6"), "gcc") == ("-march=armv6+fp", "-marm")
    assert arch_flags(P("linux/arm/v7"), "gcc") == ()
    assert arch_flags(P("linux/arm64"), "zig") == ()
