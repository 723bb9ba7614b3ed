"""Process-level store safety: SIGKILL mid-step leaves no entry; two concurrent runs build each
key once; -j N runs independent steps in parallel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from testkit import Cli, ProjectFactory, plan_argv, store_snapshot

from crossplan.hashing import hash_bytes


def _wait_for(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_sigkill_mid_step_leaves_no_entry_and_the_next_run_succeeds(
    make_project: ProjectFactory, cli_env: dict[str, str], cli: Cli, cache_dir: Path,
    tmp_path: Path,
) -> None:
    # The step reads how long to sleep from a file outside the project, so the rerun has
    # the very same key but finishes quickly.
    sleep_file = tmp_path / "sleep-seconds"
    sleep_file.write_text("60")
    sleep = f"sleep $(cat {sleep_file})"
    proj = make_project(f"""
        [project]
        name = "kill"
        platforms = ["linux/amd64"]
        [sandbox]
        mode = "off"  # the step reads a file outside its inputs on purpose (see above)
        [steps.slow]
        kind = "shell"
        src = "src"
        command = ["sh", "-c", "head -c 1000000 /dev/zero > big; touch started; {sleep}"]
        outputs = ["big"]
    """)
    proc = subprocess.Popen(
        plan_argv("run", str(proj), "--json"), env=cli_env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        _wait_for(lambda: list((cache_dir / "tmp").glob("work-*/started")))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    partial = list((cache_dir / "tmp").glob("work-*/big"))
    assert partial and partial[0].stat().st_size == 1_000_000  # the step really was mid-way
    assert store_snapshot(cache_dir).keys == ()

    sleep_file.write_text("0")
    result = cli("run", proj, "--json")
    assert result.code == 0, result.stderr
    assert result.statuses() == {"slow@linux/amd64": "built"}
    assert result.steps()["slow@linux/amd64"]["outputs"] == {"big": hash_bytes(b"\0" * 1_000_000)}
    assert cli("run", proj, "--json").statuses() == {"slow@linux/amd64": "cached"}


def test_two_concurrent_runs_build_each_key_once(
    make_project: ProjectFactory, cli_env: dict[str, str], cache_dir: Path, tmp_path: Path
) -> None:
    builds = tmp_path / "builds.log"  # outside the project: a test-only side channel
    proj = make_project(f"""
        [project]
        name = "race"
        platforms = ["linux/amd64", "linux/arm64"]
        [sandbox]
        mode = "off"  # steps append to a side channel outside their inputs, on purpose
        [steps.a]
        kind = "shell"
        src = "src"
        command = ["sh", "-c", "echo a-$TARGETARCH >> {builds}; sleep 1; echo a > a.txt"]
        outputs = ["a.txt"]
        [steps.b]
        kind = "shell"
        src = "src"
        deps = ["a", "c"]
        command = ["sh", "-c", "echo b-$TARGETARCH >> {builds}; sleep 1; cat deps/a/a.txt > b.txt"]
        outputs = ["b.txt"]
        [steps.c]
        kind = "shell"
        src = "src"
        platform_independent = true
        command = ["sh", "-c", "echo c >> {builds}; sleep 1; echo c > c.txt"]
        outputs = ["c.txt"]
    """)
    procs = [
        subprocess.Popen(
            plan_argv("run", str(proj), "--json", "-j", "2"), env=cli_env, cwd=tmp_path,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    assert sorted(builds.read_text().split()) == [
        "a-amd64", "a-arm64", "b-amd64", "b-arm64", "c",
    ]
    runs = [{_node(s): s for s in json.loads(out)["steps"]} for out, _ in outs]
    assert runs[0].keys() == runs[1].keys()
    for node in runs[0]:
        assert sorted([runs[0][node]["status"], runs[1][node]["status"]]) == ["built", "cached"]
        assert runs[0][node]["key"] == runs[1][node]["key"]
        assert runs[0][node]["outputs"] == runs[1][node]["outputs"]
    assert len(store_snapshot(cache_dir).keys) == 5


def _node(s: dict[str, str]) -> str:
    return s["id"] if s["platform"] == "any" else f"{s['id']}@{s['platform']}"


PARALLEL = """
    [project]
    name = "par"
    platforms = ["linux/amd64"]
    [steps.one]
    kind = "shell"
    src = "src"
    command = ["sh", "-c", "date +%s%N > start1; sleep 1; date +%s%N > end1"]
    outputs = ["start1", "end1"]
    [steps.two]
    kind = "shell"
    src = "src"
    command = ["sh", "-c", "date +%s%N > start2; sleep 1; date +%s%N > end2"]
    outputs = ["start2", "end2"]
"""


def _spans(dest: Path) -> list[tuple[int, int]]:
    return [
        (int((dest / s / f"linux_amd64/start{i}").read_text()),
         int((dest / s / f"linux_amd64/end{i}").read_text()))
        for i, s in ((1, "one"), (2, "two"))
    ]


def test_jobs_2_runs_independent_steps_concurrently(
    cli: Cli, make_project: ProjectFactory, tmp_path: Path
) -> None:
    proj = make_project(PARALLEL)
    result = cli("run", proj, "-j", "2", "--export", tmp_path / "d")
    assert result.code == 0, result.stderr
    (s1, e1), (s2, e2) = _spans(tmp_path / "d")
    assert s1 < e2 and s2 < e1, "the two steps' [start, end] intervals should overlap"


def test_jobs_1_runs_steps_one_at_a_time(
    cli: Cli, make_project: ProjectFactory, tmp_path: Path
) -> None:
    proj = make_project(PARALLEL)
    result = cli("run", proj, "-j", "1", "--export", tmp_path / "d")
    assert result.code == 0, result.stderr
    (s1, e1), (s2, e2) = _spans(tmp_path / "d")
    assert e1 <= s2 or e2 <= s1, "with -j 1 the intervals must not overlap"
