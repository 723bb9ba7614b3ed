"""The libc contract: values accepted, defaults resolved from the bases that take a step's
binaries, zig targets with a glibc floor, and the key following the resolved libc."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from crossplan.backends.toolchains.targets import zig_target
from crossplan.planner.keys import step_fields
from crossplan.platforms import Platform
from crossplan.recipes.libc import base_libc, libc_floor
from crossplan.recipes.models import Recipe


def recipe(steps: dict[str, Any]) -> Recipe:
    return Recipe.model_validate({"project": {"name": "x"}, "steps": steps})


def image(frm: str, base: str = "scratch") -> dict[str, Any]:
    return {"kind": "image", "base": base, "copy": [{"from": frm}]}


C = {"kind": "c", "build": ["make"]}
RUST = {"kind": "rust"}
CGO = {"kind": "go", "cgo": True}


@pytest.mark.parametrize(("step", "base", "libc", "link"), [
    (C, None, "musl", None),
    (C, "scratch", "musl", None),
    (C, "debian:bookworm-slim", "gnu", None),
    (C, "gcr.io/distroless/cc-debian12", "gnu", None),
    (C, "alpine:3.20", "musl", None),
    (C, "crossplan-ci/busybox:latest", "musl", None),
    (RUST, None, "gnu", None),
    (RUST, "scratch", "gnu", "static"),
    (RUST, "gcr.io/distroless/static-debian12", "gnu", "static"),
    (RUST, "debian:bookworm", "gnu", None),
    (RUST, "alpine", "musl", None),
    (CGO, None, None, None),
    (CGO, "scratch", "musl", None),
    (CGO, "ubuntu:24.04", None, None),
])
def test_defaults_follow_the_base(step: dict[str, Any], base: str | None, libc: str | None,
                                  link: str | None) -> None:
    steps: dict[str, Any] = {"s": step}
    if base is not None:
        steps["img"] = image("s", base)
    got = recipe(steps).steps["s"]
    assert (got.libc, got.link) == (libc, link)


def test_explicit_values_win() -> None:
    r = recipe({"s": {**RUST, "libc": "gnu.2.28", "link": "dynamic"}, "img": image("s")})
    assert (r.steps["s"].libc, r.steps["s"].link) == ("gnu.2.28", "dynamic")  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", ["glibc", "gnu.2", "musl.1.2", "gnu.3.1", "GNU"])
def test_bad_libc_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="not a libc"):
        recipe({"s": {**C, "libc": bad}})


def test_the_key_follows_the_resolved_libc() -> None:
    plain = step_fields(recipe({"s": RUST}).steps["s"])
    scratch = step_fields(recipe({"s": RUST, "img": image("s")}).steps["s"])
    floor = step_fields(recipe({"s": {**RUST, "libc": "gnu.2.28"}}).steps["s"])
    assert plain["libc"] == "gnu" and "link" not in plain and "sysroot" not in plain
    assert scratch["link"] == "static"
    assert len({str(plain), str(scratch), str(floor)}) == 3


@pytest.mark.parametrize(("platform", "libc", "target"), [
    ("linux/arm64", "gnu.2.28", "aarch64-linux-gnu.2.28"),
    ("linux/arm/v7", "gnu.2.31", "arm-linux-gnueabihf.2.31"),
    ("linux/amd64", "gnu", "x86_64-linux-gnu"),
    ("linux/arm64", "musl", "aarch64-linux-musl"),
])
def test_zig_target_with_floor(platform: str, libc: str, target: str) -> None:
    assert zig_target(Platform.parse(platform), libc) == target


def test_floor_and_base_names() -> None:
    assert libc_floor("gnu.2.28") == (2, 28) and libc_floor("gnu") is None
    assert libc_floor("musl") is None
    assert base_libc("scratch") == "none" and base_libc("oci:./base") == "unknown"


@pytest.mark.parametrize(("extra", "message"), [
    ({"sysroot": "nope"}, "unknown sysroot 'nope'"),
    ({"sysroot": "z", "libc": "musl"}, "holds Debian's glibc libraries"),
])
def test_sysroot_references_are_checked(extra: dict[str, str], message: str) -> None:
    from crossplan.errors import RecipeError
    from crossplan.recipes.validate import validate_recipe

    r = Recipe.model_validate({
        "project": {"name": "x"}, "sysroots": {"z": {"packages": ["zlib1g-dev"]}},
        "steps": {"s": {**C, "src": ".", **extra}},
    })
    with pytest.raises(RecipeError, match=message):
        validate_recipe(r)
