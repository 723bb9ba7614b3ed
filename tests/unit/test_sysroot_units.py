"""Sysroots without the world: apt sources derived from the machine's, the key component and
what explain says when a package changes, the variables a build gets, errors per node."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from crossplan.backends.toolchains.base import BuildAction
from crossplan.backends.toolchains.sysroot import sysroot_env, with_sysroot
from crossplan.errors import EnvironmentProblem
from crossplan.planner.affected import diff_components
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import make_plan
from crossplan.planner.sysroot import LockedPackage, SysrootFact, sysroot_component
from crossplan.platforms import Platform
from crossplan.probe import gather
from crossplan.probe.sysroot_nodes import probe_sysroots
from crossplan.probe.sysroots import apt_sources
from crossplan.recipes.models import Recipe

ARM64 = Platform.parse("linux/arm64")


def fact(zlib: str = "1:1.2.13.dfsg-1", sha: str = "a" * 64, path: str = "/s") -> SysrootFact:
    return SysrootFact("z", "bookworm", "arm64", (
        LockedPackage("libc6", "2.36-9", "arm64", "b" * 64),
        LockedPackage("zlib1g", zlib, "arm64", sha),
        LockedPackage("debconf", "1.5.82", "all", "c" * 64),
    ), path)


def test_apt_sources_follow_the_machine(tmp_path: Path) -> None:
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb-src\nURIs: http://mirror.example/debian\nSuites: bookworm\n"
        "Components: main\n")
    text = apt_sources("trixie", (d, tmp_path / "missing.list"))
    assert "URIs: http://mirror.example/debian" in text
    assert "Suites: trixie trixie-updates" in text and "deb-src" not in text
    assert "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" in text
    with pytest.raises(EnvironmentProblem, match="no apt sources"):
        apt_sources("bookworm", (tmp_path / "none",))


def test_component_names_packages_not_paths() -> None:
    a, b = sysroot_component(fact(path="/one")), sysroot_component(fact(path="/two"))
    assert a == b and "/one" not in str(a)
    assert a["packages"]["zlib1g"] == f"1:1.2.13.dfsg-1 sha256:{'a' * 64}"
    newer = sysroot_component(fact(zlib="1:1.2.13.dfsg-2", sha="d" * 64))
    lines = diff_components({"sysroot": a}, {"sysroot": newer})
    assert len(lines) == 1 and lines[0].startswith("sysroot.packages.zlib1g changed:")


def test_the_locked_packages_enter_the_key(tmp_path: Path) -> None:
    recipe = Recipe.model_validate({
        "project": {"name": "x", "platforms": ["linux/arm64"]},
        "sysroots": {"z": {"packages": ["zlib1g-dev"]}},
        "steps": {"s": {"kind": "c", "build": ["make"], "sysroot": "z"}},
    })
    base = gather(recipe, None, environ={})
    node = NodeId("s", "linux/arm64")

    def key(f: SysrootFact) -> str | None:
        plan = make_plan(recipe, None, dataclasses.replace(base, sysroots={node: f}))
        return plan.input_keys()[node]

    assert key(fact(path="/a")) == key(fact(path="/b"))  # where the store keeps it: no
    assert key(fact()) != key(fact(zlib="1:1.2.13.dfsg-2"))  # a changed version: yes
    assert key(fact()) != key(fact(sha="e" * 64))
    assert recipe.steps["s"].libc == "gnu"  # type: ignore[union-attr]  # Debian: glibc


@pytest.mark.parametrize(("toolchain", "kind", "var", "want"), [
    ("c", "gcc", "CFLAGS", "-O2 --sysroot=/S -ffile-prefix-map=/S=/sysroot"),
    ("c", "zig", "LDFLAGS", "-L/S/usr/lib/aarch64-linux-gnu"),
    ("go", "gcc", "CGO_LDFLAGS", "--sysroot=/S"),
    ("rust", "gcc", "RUSTFLAGS", "-C link-arg=--sysroot=/S"),
    ("rust", "gcc", "PKG_CONFIG_SYSROOT_DIR_aarch64_unknown_linux_gnu", "/S"),
    ("c", "gcc", "PKG_CONFIG_LIBDIR", "/S/usr/lib/aarch64-linux-gnu/pkgconfig:"),
    ("go", "gcc", "PKG_CONFIG_SYSROOT_DIR", "/S"),
])
def test_build_variables(toolchain: str, kind: str, var: str, want: str) -> None:
    env = sysroot_env("/S", ARM64, toolchain, kind, {"CFLAGS": "-O2", "RUSTFLAGS": "--x"})
    assert want in env[var]
    built = with_sysroot(BuildAction(commands=(("make",),), env={"CFLAGS": "-O2"}), "/S",
                         ARM64, toolchain, kind)
    assert built.commands == (("make",),) and built.env["CROSSPLAN_SYSROOT"] == "/S"


def test_a_missing_sysroot_fails_only_its_nodes() -> None:
    recipe = Recipe.model_validate({
        "project": {"name": "x"},
        "steps": {"s": {"kind": "c", "build": ["make"], "sysroot": "nope"},
                  "t": {"kind": "c", "build": ["make"]}},
    })
    nodes = {NodeId("s", "linux/arm64"): ARM64, NodeId("t", "linux/arm64"): ARM64}

    def provide(name: str, platform: Platform) -> SysrootFact:
        raise EnvironmentProblem(f"no sysroot named '{name}'")

    found, failed = probe_sysroots(recipe, nodes, provide)
    assert found == {} and set(failed) == {NodeId("s", "linux/arm64")}
    assert failed[NodeId("s", "linux/arm64")].step == "s"
