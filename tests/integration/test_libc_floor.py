"""A glibc floor: the same C program built with ``libc = "gnu"`` by Debian's cross gcc needs
the host's newer glibc symbols; with ``libc = "gnu.2.28"`` (zig's -target
aarch64-linux-gnu.2.28) it needs no GLIBC_ symbol newer than 2.28, and the ELF check
enforces the floor on every build."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sysroot_kit import exported, shared_toolcache
from testkit import Cli, require_component

from crossplan.backends.elf import check_elf, read_elf
from crossplan.errors import StepFailed
from crossplan.platforms import Platform

# Linked against bookworm's glibc 2.36 a program needs __libc_start_main@GLIBC_2.34, and
# stat@GLIBC_2.33 (stat became a real symbol in 2.33).
PROG = r"""
#include <stdio.h>
#include <sys/stat.h>
int main(int argc, char **argv) {
    struct stat st;
    if (stat(argv[0], &st) != 0) return 2;
    printf("floor ok %d\n", argc);
    return 0;
}
"""
TC = shared_toolcache(Path("/tmp/crossplan-test-toolcache"))


def _project(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "prog.c").write_text(PROG)

    def step(out: str) -> str:
        return (f'kind = "c"\nsrc = "."\nbuild = ["mkdir -p {out} && $CC $CFLAGS '
                f'-o {out}/prog prog.c $LDFLAGS"]\noutputs = ["{out}/prog"]\nsmoke = []\n'
                'smoke_expect = "floor ok"\n')
    (root / "plan.toml").write_text(
        '[project]\nname = "floor"\nplatforms = ["linux/arm64"]\n\n'
        f'[steps.newest]\n{step("a")}compiler = "gcc"\nlibc = "gnu"\n\n'
        f'[steps.floor]\n{step("b")}compiler = "zig"\nlibc = "gnu.2.28"\n'
    )
    return root


def test_glibc_floor_limits_symbol_versions(tmp_path: Path, cli: Cli) -> None:
    from crossplan.backends.toolchains.find import find_zig

    require_component(find_zig(dict(os.environ)) is not None, "zig (pip install ziglang)")
    require_component(shutil.which("aarch64-linux-gnu-gcc") is not None, "gcc-aarch64-linux-gnu")
    proj = _project(tmp_path / "p")
    export = tmp_path / "export"
    res = cli("run", proj, "--smoke", "--json", "--export", export, timeout=900, env=TC)
    assert res.code == 0, res.stdout + res.stderr
    steps = res.steps()
    assert steps["floor@linux/arm64"]["smoke"].startswith("ok: floor ok")
    newest = read_elf(exported(export, "newest", "linux/arm64", "a/prog"))
    floor = read_elf(exported(export, "floor", "linux/arm64", "b/prog"))
    assert newest.glibc is not None and newest.glibc >= (2, 34), newest.glibc
    assert floor.glibc is not None and floor.glibc <= (2, 28), floor.glibc
    assert floor.interpreter == "/lib/ld-linux-aarch64.so.1"
    # the ELF check itself: the gcc build fails a 2.28 floor, naming both versions
    with pytest.raises(StepFailed) as exc:
        check_elf(exported(export, "newest", "linux/arm64", "a/prog"),
                  Platform.parse("linux/arm64"), glibc_floor=(2, 28), step="newest")
    assert "gnu.2.28" in exc.value.message and "needs GLIBC_2.3" in exc.value.message
    # the key says which floor: plan explain shows the resolved libc of each step
    res = cli("explain", proj, "floor", "--json", env=TC)
    assert res.code == 0, res.stderr
    assert res.json()["components"]["step"]["libc"] == "gnu.2.28"


def test_floor_violation_is_caught_by_the_elf_check(tmp_path: Path, cli: Cli) -> None:
    """gcc cannot honour a floor: asked for one, the step refuses with the fix (exit 3)."""
    require_component(shutil.which("aarch64-linux-gnu-gcc") is not None, "gcc-aarch64-linux-gnu")
    proj = _project(tmp_path / "p")
    text = (proj / "plan.toml").read_text().replace('compiler = "gcc"\nlibc = "gnu"',
                                                    'compiler = "gcc"\nlibc = "gnu.2.17"')
    (proj / "plan.toml").write_text(text)
    res = cli("run", proj, "newest", timeout=600, env=TC)
    assert res.code == 3, res.stdout + res.stderr
    assert "glibc floor" in res.stderr and 'compiler = "zig"' in res.stderr
