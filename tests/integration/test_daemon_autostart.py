"""A `plan` command run on a terminal that finds no daemon starts one for the commands after
it (outside CI, unless CROSSPLAN_DAEMON is "manual" or "0"); two daemons started at once
for one socket leave one serving."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_daemon import PLAN, _plan, _status
from testkit import ProjectFactory, plan_argv, processes, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def no_daemon_env(cli_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """cli_env with no CROSSPLAN_DAEMON, no CI, and a socket directory not made yet (as on
    a fresh machine); any daemon started is stopped afterwards."""
    parent = tempfile.mkdtemp(prefix="cpa-", dir="/tmp")
    env = {k: v for k, v in cli_env.items() if k not in ("CROSSPLAN_DAEMON", "CI")}
    env["CROSSPLAN_DAEMON_DIR"] = os.path.join(parent, "d")
    try:
        yield env
    finally:
        _plan("daemon", "stop", env=env)
        shutil.rmtree(parent, ignore_errors=True)


def _on_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """``argv`` with its stderr a terminal (stdout a pipe): exit code, stdout, stderr. The
    terminal is read while the command runs (a full one would block its writes)."""
    leader, follower = pty.openpty()
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=follower,
                                stdin=subprocess.DEVNULL, text=True)
        os.close(follower)
        out, _ = proc.communicate(timeout=120)
        reader.join(30)
    finally:
        os.close(leader)
    return proc.returncode, out, b"".join(chunks).decode(errors="replace")


def _serving(env: dict[str, str]) -> dict[str, Any]:
    wait_until(lambda: _status(env)["running"], 30, "the daemon started for later commands")
    return _status(env)


def test_a_command_on_a_terminal_starts_a_daemon_for_the_next(
    no_daemon_env: dict[str, str], make_project: ProjectFactory,
) -> None:
    env = no_daemon_env
    proj = make_project(PLAN, files={"src/a.txt": "auto\n"})
    code, out, err = _on_terminal(plan_argv("run", str(proj), "--json"), env)
    assert code == 0, err
    assert json.loads(out)["steps"], out  # this command ran here, in full
    assert "starting a crossplan daemon" in err and "CROSSPLAN_DAEMON=manual" in err, err
    status = _serving(env)
    assert status["served"] == 0 and status["idle"] == 3 * 3600
    # the next command (not on a terminal) goes to it
    again = _plan("run", str(proj), "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert _status(env)["served"] == 1
    # while one runs, a command on a terminal starts none and says nothing
    code, _, err = _on_terminal(plan_argv("run", str(proj), "--json"), env)
    assert code == 0 and "starting a crossplan daemon" not in err, err
    assert _status(env)["served"] == 2 and _status(env)["pid"] == status["pid"]

    # stopped: the next terminal command starts none (for 10 minutes), then one does
    assert _plan("daemon", "stop", env=env).returncode == 0
    code, _, err = _on_terminal(plan_argv("run", str(proj), "--json"), env)
    assert code == 0 and "daemon" not in err, err
    assert _status(env)["running"] is False
    marker = Path(str(status["socket"]).removesuffix(".sock") + ".auto")
    old = time.time() - 11 * 60
    os.utime(marker, (old, old))
    code, _, err = _on_terminal(plan_argv("run", str(proj), "--json"), env)
    assert code == 0 and "starting a crossplan daemon" in err, err
    assert _serving(env)["pid"] != status["pid"]


@pytest.mark.parametrize("extra", [{"CI": "true"}, {"CROSSPLAN_DAEMON": "manual"}])
def test_ci_or_manual_mode_starts_no_daemon(
    no_daemon_env: dict[str, str], make_project: ProjectFactory, extra: dict[str, str],
) -> None:
    env = {**no_daemon_env, **extra}
    proj = make_project(PLAN, files={"src/a.txt": "ci\n"})
    code, _, err = _on_terminal(plan_argv("run", str(proj), "--json"), env)
    assert code == 0, err
    assert "daemon" not in err, err
    assert not Path(env["CROSSPLAN_DAEMON_DIR"]).exists()
    assert _status(env)["running"] is False
    # nor does a command whose stderr is not a terminal, in auto mode
    plain = _plan("run", str(proj), "--json", env=no_daemon_env)
    assert plain.returncode == 0 and "daemon" not in plain.stderr, plain.stderr
    assert _status(no_daemon_env)["running"] is False


def test_two_daemons_started_at_once_leave_one(no_daemon_env: dict[str, str]) -> None:
    env = no_daemon_env
    code = "import sys; from crossplan.cli.daemon import main; main(sys.argv[1:])"
    sock = json.loads(_plan("daemon", "status", "--json", env=env).stdout)["socket"]
    os.makedirs(os.path.dirname(sock), mode=0o700)
    procs = [subprocess.Popen([*plan_argv()[:1], "-c", code, sock, "60", "-1"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    try:
        status = _serving(env)
        # the one that did not get the socket's lock said so and ended; the other serves
        ended = [p for p in procs if p.pid != status["pid"]]
        assert len(ended) == 1, [p.pid for p in procs]
        out, _ = ended[0].communicate(timeout=30)
        assert ended[0].returncode == 0 and "another daemon serves" in out, out
        wait_until(lambda: len(processes(sock)) == 1, 10, "one daemon process on the socket")
    finally:
        _plan("daemon", "stop", env=env)
        for p in procs:
            p.communicate(timeout=30)
