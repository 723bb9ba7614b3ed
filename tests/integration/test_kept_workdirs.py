"""Kept work dirs through `plan run` in bubblewrap: the next run of a step copies only what
changed, and the step sees exactly its inputs whatever the last run did to its dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from testkit import Cli, ProjectFactory

pytestmark = pytest.mark.integration

SANDBOX = {"CROSSPLAN_SANDBOX": "bwrap"}  # required: kept dirs are for sandboxed steps only

RECIPE = """
[project]
name = "kept"
platforms = ["linux/amd64"]

[steps.s]
kind = "shell"
src = "src"
command = ["sh", "-c", '''ls -A > ls.txt && stat -c '%i %w' keep.txt > ino.txt &&
  cat a.txt b.txt > all.txt && echo junk > junk.txt && mkdir -p .home/c &&
  echo tampered >> a.txt''']
outputs = ["ino.txt", "all.txt", "ls.txt"]
platform_independent = true
"""


def _out(proj: Path, run: str, name: str) -> str:
    return (proj / run / "s" / "any" / name).read_text()


# A kept file is trusted only if its ctime is before the coarse clock read as the command
# starts (git's racy rule, executors/stash.py), and with multigrain timestamps (Linux 6.13+)
# a ctime can be up to a tick (4 ms) ahead of that clock: three tiny inputs are staged well
# within a tick of the start, so none would be trusted. Staging this file after keep.txt
# (inputs are staged in path order) puts keep.txt's ctime tens of ms before the start.
PADDING = {"src/zz-padding.bin": "p" * (32 << 20)}


def test_the_next_run_reuses_untouched_inputs_and_sees_none_of_the_last_runs_changes(
    make_project: ProjectFactory, cli: Cli, cache_dir: Path,
) -> None:
    proj = make_project(RECIPE, files={"src/a.txt": "A\n", "src/b.txt": "B\n",
                                       "src/keep.txt": "K\n", **PADDING})
    first = cli("run", proj, "--json", "--export", proj / "o1", env=SANDBOX)
    assert first.code == 0, first.stderr
    assert _out(proj, "o1", "all.txt") == "A\nB\n"
    assert len(list((cache_dir / "stash").iterdir())) == 1  # the step's dir was kept

    (proj / "src" / "b.txt").write_text("B2\n")
    second = cli("run", proj, "--json", "--export", proj / "o2", env=SANDBOX)
    assert second.code == 0, second.stderr
    assert second.statuses() == {"s": "built"}
    # a.txt, which the first run appended to, is as planned again; its junk is gone
    assert _out(proj, "o2", "all.txt") == "A\nB2\n"
    assert _out(proj, "o2", "ls.txt").split() == [".crossplan.log", ".home", ".tmp",
                                                  "a.txt", "b.txt", "keep.txt",
                                                  "ls.txt", "zz-padding.bin"]
    # keep.txt was not copied again: the same file as in the first run (inode and birth
    # time: a copy could be given the inode number the removed file had)
    assert _out(proj, "o2", "ino.txt") == _out(proj, "o1", "ino.txt")

    (proj / "src" / "b.txt").write_text("B3\n")
    fresh = cli("run", proj, "--json", "--export", proj / "o3",
                env={**SANDBOX, "CROSSPLAN_REUSE_WORKDIRS": "0"})
    assert fresh.code == 0, fresh.stderr
    assert _out(proj, "o3", "all.txt") == "A\nB3\n"
    assert _out(proj, "o3", "ino.txt") != _out(proj, "o2", "ino.txt")  # copied afresh

    # gc: a kept dir within the size stays; once its recipe is gone, it goes
    gc = cli("cache", "gc", "--max-size", "1G", "--json")
    assert gc.code == 0 and gc.json()["kept_workdirs_removed"] == 0, gc.stderr
    assert gc.json()["kept_workdirs"]["count"] == 1
    assert gc.json()["kept_workdirs"]["bytes"] > 32 << 20  # the padding input is in it
    (proj / "plan.toml").rename(proj / "moved.toml")
    gc = cli("cache", "gc", "--max-size", "1G", "--json")
    assert gc.code == 0 and gc.json()["kept_workdirs_removed"] == 1, gc.stderr
    assert list((cache_dir / "stash").iterdir()) == []


def test_an_unsandboxed_step_keeps_no_dir(
    make_project: ProjectFactory, cli: Cli, cache_dir: Path,
) -> None:
    """Without the sandbox a step's processes may outlive it: its dir is never kept."""
    proj = make_project(RECIPE, files={"src/a.txt": "A\n", "src/b.txt": "B\n",
                                       "src/keep.txt": "K\n"})
    res = cli("run", proj, "--json", env={"CROSSPLAN_SANDBOX": "off"})
    assert res.code == 0, res.stderr
    assert not (cache_dir / "stash").exists() or not list((cache_dir / "stash").iterdir())
