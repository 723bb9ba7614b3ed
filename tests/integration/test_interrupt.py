"""Ctrl-C (and SIGTERM) during `plan run`: the running step's processes are killed (its
bubblewrap sandbox with them), "interrupted" on stderr, exit 130, no "failed:" noise,
nothing of the step in the store, and the next run builds it cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from testkit import Cli, ProjectFactory, plan_argv, processes, wait_until

# Sleeps until DEADLINE (a fixed epoch second: the same key in both runs), then finishes.
SLOW = """
[project]
name = "slow"
platforms = ["linux/amd64"]

[steps.slow]
kind = "shell"
src = "src/"
command = ["sh", "-c", '''echo begun-{tag}
if [ $(date +%s) -lt {deadline} ]; then sleep {sleep}; fi
echo ok > out.txt''']
outputs = ["out.txt"]

[sandbox]
mode = "{sandbox}"
"""


@pytest.mark.parametrize(("sig", "sandbox"), [
    (signal.SIGINT, "bwrap"), (signal.SIGTERM, "bwrap"), (signal.SIGINT, "off"),
], ids=["SIGINT", "SIGTERM", "SIGINT-no-sandbox"])
def test_interrupt_kills_the_step_exits_130_and_the_next_run_is_clean(
    sig: signal.Signals, sandbox: str, tmp_path: Path, make_project: ProjectFactory, cli: Cli,
    cli_env: dict[str, str], cache_dir: Path,
) -> None:
    tag = uuid.uuid4().hex[:12]
    sleep = f"300.{int(tag, 16) % 10**9}"  # a unique `sleep` argument to find it by
    deadline = int(time.time()) + 20
    proj = make_project(SLOW.format(tag=tag, deadline=deadline, sleep=sleep, sandbox=sandbox),
                        files={"src/a.txt": "a\n"})
    proc = subprocess.Popen(
        plan_argv("run", str(proj), "-v", "--progress", "plain"), env=cli_env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        wait_until(lambda: processes(f"sleep {sleep}") or proc.poll() is not None, 60,
              "the step's sleep")
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.3)  # -v: the tail thread polls the log every 0.2 s
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert stderr.rstrip().endswith("interrupted"), stderr
    assert "failed" not in stderr and "Traceback" not in stderr, stderr
    assert f"slow@linux/amd64 | begun-{tag}" in stderr, stderr  # -v streamed the log
    assert "slow@linux/amd64: running" in stderr
    wait_until(lambda: not processes(f"sleep {sleep}"), 5, f"no `sleep {sleep}` left")
    assert not processes(f"begun-{tag}")  # nor its shell, nor its bwrap

    ls = cli("cache", "ls", "--json")
    assert ls.code == 0 and json.loads(ls.stdout) == [], ls.stdout  # the killed node: not cached
    work = [p.name for p in (cache_dir / "tmp").iterdir()] if (cache_dir / "tmp").is_dir() else []
    assert not [w for w in work if w.startswith("work-")], work
    verify = cli("cache", "verify", "--json")
    assert verify.code == 0 and json.loads(verify.stdout)["ok"] is True, verify.stderr

    while time.time() <= deadline:  # the same step (same key), now fast
        time.sleep(0.2)
    again = cli("run", str(proj), "--json")
    assert again.code == 0, again.stderr
    assert [s["status"] for s in json.loads(again.stdout)["steps"]] == ["built"]
    assert cli("cache", "verify").code == 0
