"""The no-op memo on a C plan compiled by zig: a fully cached `plan run` is replayed without
planning (its key holds `zig version`, the target and libc: the memo vouches for them by the
stat signatures of the zig the step's wrappers run, with each link on the way, the `zig` on
PATH and every directory on PATH), and any of those changing is a miss that plans and asks
zig again. An image with per-platform tags that is not pushed is replayed too."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from test_noop_memo import (
    JSON,
    _memos,
    _replayed,
    ci_toolcache,
    settle,
)
from testkit import EXAMPLES, Cli, CliResult, require_component

from crossplan.backends.toolchains.find import package_dir
from crossplan.backends.toolchains.managed import KNOWN_WHEELS, _final
from crossplan.backends.toolchains.targets import wheel_arch
from crossplan.platforms import build_platform
from crossplan.probe.sandbox import sandbox_problem

pytestmark = pytest.mark.integration

ZIG = "0.17.1"  # the ziglang the [toolchains] extra installs
PLAN = f"""\
[project]
name = "memo-c"
platforms = ["linux/amd64"]

[toolchains]
zig = "{ZIG}"

[steps.tool]
kind = "c"
src = "c/"
build = ["make", "hello"]
outputs = ["hello"]
compiler = "zig"

[steps.image]
kind = "image"
base = "scratch"
copy = [{{ from = "tool", src = "hello", dest = "/usr/local/bin/hello" }}]
tags = ["127.0.0.1:5999/memo-c/hello:1"]
arch_tags = true
"""


def test_a_zig_c_plan_is_replayed_until_its_compiler_changes(
    cli: Cli, tmp_path: Path, cache_dir: Path
) -> None:
    require_component(sandbox_problem() is None, "bubblewrap cannot sandbox here")
    pkg = package_dir("ziglang")
    require_component(pkg is not None and (pkg / "zig").is_file(),
                      "ziglang: pip install -e '.[toolchains]'")
    assert pkg is not None
    sha = KNOWN_WHEELS[("ziglang", ZIG, wheel_arch(build_platform()))]
    # The pinned zig "installed" in a toolchains dir of this test's: its zig a link to the
    # package's (the same binary: no download), which the test can re-point.
    tcdir = tmp_path / "toolchains"
    zig = _final(tcdir, "zig", ZIG, sha) / "ziglang" / "zig"
    zig.parent.mkdir(parents=True)
    zig.symlink_to(pkg / "zig")
    proj = tmp_path / "proj"
    shutil.copytree(EXAMPLES / "hello" / "c", proj / "c")
    (proj / "plan.toml").write_text(PLAN)
    early = tmp_path / "early"
    early.mkdir()
    env = {"PATH": f"{early}{os.pathsep}{os.environ['PATH']}",
           "CROSSPLAN_TOOLCACHE_DIR": str(ci_toolcache("noop-c", tmp_path)),
           "CROSSPLAN_TOOLCHAINS_DIR": str(tcdir)}

    def run() -> CliResult:
        return cli("run", proj, *JSON, env=env, timeout=600)

    def settled() -> None:
        settle(run, {"tool@linux/amd64": "cached", "image": "cached"},
               proj, cache_dir, early, tcdir)

    built = run()
    assert built.code == 0, built.stderr
    assert built.statuses() == {"tool@linux/amd64": "built", "image": "built"}
    settled()
    memos = _memos(cache_dir)
    assert len(memos) == 1
    recorded = {row[0] for row in json.loads(memos[0].read_text())["files"]}
    assert str(zig) in recorded and str(pkg / "zig") in recorded  # the link and its end
    assert str(early) in recorded

    # The pinned zig is another file (re-installed, re-pointed): plans, asks it again.
    zig.unlink()
    zig.symlink_to(pkg / "zig")
    res = run()
    assert not _replayed(res), "a changed zig was replayed"
    assert res.statuses() == {"tool@linux/amd64": "cached", "image": "cached"}  # same version
    settled()

    # A directory on PATH changes (a tool appears in it): plans.
    (early / "zig").symlink_to(pkg / "zig")
    res = run()
    assert not _replayed(res), "a new `zig` on PATH was replayed"
    settled()

    # A replay still checks the input tree: an edit rebuilds (another binary: the image too).
    source = proj / "c" / "hello.c"
    assert "hello from c" in source.read_text()
    source.write_text(source.read_text().replace("hello from c", "hello from edited c"))
    res = run()
    assert not _replayed(res)
    assert res.statuses() == {"tool@linux/amd64": "built", "image": "built"}


GCC_PLAN = """\
[project]
name = "memo-gcc"
platforms = ["linux/arm64"]

[steps.tool]
kind = "c"
src = "c/"
build = ["make", "hello"]
outputs = ["hello"]
compiler = "gcc"
libc = "gnu"
"""


def test_a_cross_gcc_plan_is_replayed_and_records_the_compiler(
    cli: Cli, tmp_path: Path, cache_dir: Path
) -> None:
    """Debian's cross gcc: its version line is the driver's, whose path (and the links to
    it) the memo records; a gcc appearing earlier on PATH is a miss."""
    require_component(sandbox_problem() is None, "bubblewrap cannot sandbox here")
    gcc = shutil.which("aarch64-linux-gnu-gcc")
    require_component(gcc is not None, "apt-get install gcc-aarch64-linux-gnu")
    assert gcc is not None
    proj = tmp_path / "proj"
    shutil.copytree(EXAMPLES / "hello" / "c", proj / "c")
    (proj / "plan.toml").write_text(GCC_PLAN)
    early = tmp_path / "early"
    early.mkdir()
    env = {"PATH": f"{early}{os.pathsep}{os.environ['PATH']}"}

    def run() -> CliResult:
        return cli("run", proj, *JSON, env=env, timeout=600)

    built = run()
    assert built.code == 0, built.stderr
    assert built.statuses() == {"tool@linux/arm64": "built"}
    settle(run, {"tool@linux/arm64": "cached"}, proj, cache_dir, early)
    recorded = {row[0] for row in json.loads(_memos(cache_dir)[0].read_text())["files"]}
    assert gcc in recorded and os.path.realpath(gcc) in recorded

    (early / "aarch64-linux-gnu-gcc").symlink_to(os.path.realpath(gcc))
    res = run()
    assert not _replayed(res), "a gcc appearing earlier on PATH was replayed"
