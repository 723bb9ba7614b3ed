"""Public Go code using cgo against a system library: mattn/go-sqlite3 (Debian's
golang-github-mattn-go-sqlite3-dev, which links the system libsqlite3) and its own
``_example/simple`` program, cross-built with cgo for linux/amd64 and linux/arm64 against a
Debian sysroot holding libsqlite3-dev; each binary runs (qemu-user -L <sysroot> for arm64)
and needs libsqlite3.so.0."""

from __future__ import annotations

import shutil
from pathlib import Path

from sysroot_kit import apt_ok, exported, sysroot_env
from testkit import Cli, require_component

from crossplan.backends.elf import EM_AARCH64, EM_X86_64, read_elf

PKG = Path("/usr/share/gocode/src/github.com/mattn/go-sqlite3")
PLAN = """
[project]
name = "cgo-sqlite"
platforms = ["linux/amd64", "linux/arm64"]

[sysroots.sqlite]
packages = ["libsqlite3-dev"]

[steps.simple]
kind = "go"
src = "."
cgo = true
sysroot = "sqlite"
binary = "simple"
smoke = []
smoke_expect = "99 こんにちは世界099"
"""
GO_MOD = """module example.com/simple

go 1.16

require github.com/mattn/go-sqlite3 v1.14.16

replace github.com/mattn/go-sqlite3 => ./third_party/go-sqlite3
"""


def _project(root: Path) -> Path:
    root.mkdir()
    shutil.copytree(PKG, root / "third_party" / "go-sqlite3",
                    ignore=shutil.ignore_patterns("_example", "*_test.go", "upgrade"))
    shutil.copy(PKG / "_example" / "simple" / "simple.go", root / "main.go")
    (root / "go.mod").write_text(GO_MOD)
    (root / "plan.toml").write_text(PLAN)
    return root


def test_cgo_sqlite_against_a_debian_sysroot(tmp_path: Path, cli: Cli) -> None:
    require_component(PKG.is_dir(), "golang-github-mattn-go-sqlite3-dev")
    require_component(apt_ok(), "apt-get and dpkg-deb")
    require_component(shutil.which("aarch64-linux-gnu-gcc") is not None, "gcc-aarch64-linux-gnu")
    proj = _project(tmp_path / "p")
    export = tmp_path / "export"
    run_dir = tmp_path / "run"  # simple.go writes ./foo.db where it runs
    run_dir.mkdir()
    res = cli("run", proj, "--smoke", "--json", "--export", export, timeout=1200,
              env=sysroot_env(tmp_path), cwd=run_dir)
    assert res.code == 0, res.stdout[-3000:] + res.stderr[-3000:]
    steps = res.steps()
    for plat, machine in (("linux/amd64", EM_X86_64), ("linux/arm64", EM_AARCH64)):
        assert steps[f"simple@{plat}"]["smoke"].startswith("ok: "), steps[f"simple@{plat}"]
        elf = read_elf(exported(export, "simple", plat, "simple"))
        assert elf.machine == machine
        assert "libsqlite3.so.0" in elf.needed, elf.needed  # the system library, linked
    res = cli("explain", proj, "simple", "--platform", "linux/arm64", "--json",
              env=sysroot_env(tmp_path))
    comp = res.json()["components"]
    assert comp["step"]["libc"] == "gnu" and comp["step"]["sysroot"] == "sqlite"
    assert "libsqlite3-0" in comp["sysroot"]["packages"]
