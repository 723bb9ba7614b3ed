"""`plan daemon`: a resident process that runs `plan` commands warm. A command handed to it
is the caller's command: its cwd, environment, descriptors (a terminal stays a terminal),
exit code and signals; the same keys and results as without it. A daemon whose code
changed declines (the command runs without it) and exits; a socket directory others can
write to is never used."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit import REPO, ProjectFactory, plan_argv, processes, wait_until

pytestmark = pytest.mark.integration

PLAN = """\
[project]
name = "warm"
platforms = ["linux/amd64", "linux/arm64"]

[steps.gen]
kind = "shell"
src = "src/"
command = ["sh", "-c", "cat a.txt a.txt > twice.txt"]
outputs = ["twice.txt"]
platform_independent = true

[steps.report]
kind = "shell"
src = "src/"
deps = ["gen"]
command = ["sh", "-c", "wc -c < twice.txt > size.txt; echo $TARGETARCH >> size.txt"]
outputs = ["size.txt"]

[steps.image]
kind = "image"
base = "scratch"
copy = [{ from = "report", src = "size.txt", dest = "/size.txt" }]
"""

SLOW = """\
[project]
name = "slow"
platforms = ["linux/amd64"]

[steps.slow]
kind = "shell"
src = "src/"
command = ["sh", "-c", "echo begun; sleep {sleep}; echo ok > out.txt"]
outputs = ["out.txt"]
"""


def _plan(*args: str, env: dict[str, str], cwd: Path | None = None,
          timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(plan_argv(*args), env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _status(env: dict[str, str]) -> dict[str, Any]:
    proc = _plan("daemon", "status", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


@pytest.fixture
def warm_env(cli_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """cli_env with a daemon of its own running (a short socket directory: AF_UNIX paths
    are limited to 108 bytes), stopped afterwards."""
    directory = tempfile.mkdtemp(prefix="cpd-", dir="/tmp")
    env = {k: v for k, v in cli_env.items() if k != "CROSSPLAN_DAEMON"}
    env["CROSSPLAN_DAEMON_DIR"] = directory
    try:
        yield env
    finally:
        _plan("daemon", "stop", env=env)
        shutil.rmtree(directory, ignore_errors=True)


def _start(env: dict[str, str]) -> dict[str, Any]:
    proc = _plan("daemon", "start", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    assert doc["running"] is True
    return doc


def _keys(stdout: str) -> dict[str, str]:
    return {f"{s['id']}@{s['platform']}": s["key"] for s in json.loads(stdout)["steps"]}


def test_commands_run_in_the_daemon_with_the_same_results(
    warm_env: dict[str, str], cli_env: dict[str, str], make_project: ProjectFactory,
    tmp_path: Path,
) -> None:
    proj = make_project(PLAN, files={"src/a.txt": "warm\n"})
    first = _start(warm_env)
    assert first["started_now"] is True
    again = _start(warm_env)
    assert again["started_now"] is False and again["pid"] == first["pid"]
    assert _status(warm_env)["served"] == 0

    # no PLAN argument: the daemon's process finds plan.toml from the caller's directory
    warm = _plan("run", "--json", env={**warm_env, "CROSSPLAN_CACHE_DIR": str(tmp_path / "a")},
                 cwd=proj)
    assert warm.returncode == 0, warm.stderr
    assert _status(warm_env)["served"] == 1  # it did go through the daemon
    cold = _plan("run", "--json", env={**cli_env, "CROSSPLAN_CACHE_DIR": str(tmp_path / "b")},
                 cwd=proj)
    assert cold.returncode == 0, cold.stderr
    assert _keys(warm.stdout) == _keys(cold.stdout)
    assert {s["status"] for s in json.loads(warm.stdout)["steps"]} == {"built"}
    # the caller's CROSSPLAN_CACHE_DIR: the daemon's run filled store a, not another
    for store in ("a", "b"):
        ls = _plan("cache", "ls", "--json", env={**cli_env,
                                                 "CROSSPLAN_CACHE_DIR": str(tmp_path / store)})
        assert len(json.loads(ls.stdout)) == 4, (store, ls.stdout)
    # once more through the daemon: everything cached, same keys
    cached = _plan("run", str(proj), "--json",
                   env={**warm_env, "CROSSPLAN_CACHE_DIR": str(tmp_path / "a")})
    assert cached.returncode == 0, cached.stderr
    assert {s["status"] for s in json.loads(cached.stdout)["steps"]} == {"cached"}
    assert _keys(cached.stdout) == _keys(cold.stdout)

    # the no-op memo works as without a daemon: a repeated cached run is replayed (no
    # "planning" line), and one with another environment is planned
    memo_env = {**warm_env, "CROSSPLAN_CACHE_DIR": str(tmp_path / "a")}
    time.sleep(2.1)  # the memo's racy rule: nothing written within 2 s of a run is memoised
    runs = [_plan("run", str(proj), "--progress", "plain", env=e)
            for e in (memo_env, memo_env, {**memo_env, "SOME_VAR": "1"})]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    assert "planning" in runs[0].stderr, runs[0].stderr
    assert "planning" not in runs[1].stderr, runs[1].stderr  # replayed (by the daemon's fork)
    assert "planning" in runs[2].stderr, runs[2].stderr  # the environment keys the memo

    # exit codes and stderr are the command's: a broken recipe is exit 2, named
    (proj / "plan.toml").write_text(PLAN.replace('deps = ["gen"]', 'deps = ["nope"]'))
    bad = _plan("run", str(proj), env=warm_env)
    assert bad.returncode == 2, bad.stderr
    assert "nope" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    served = _status(warm_env)["served"]
    assert served == 6, served  # every command, the replay too

    stop = _plan("daemon", "stop", "--json", env=warm_env)
    assert stop.returncode == 0 and json.loads(stop.stdout)["stopped"] is True, stop.stderr
    assert _status(warm_env)["running"] is False
    assert not list(Path(warm_env["CROSSPLAN_DAEMON_DIR"]).glob("*.sock"))
    after = _plan("run", str(proj), env=warm_env)  # no daemon: runs here, same error
    assert after.returncode == 2 and "nope" in after.stderr, after.stderr


def test_a_terminal_stays_a_terminal(
    warm_env: dict[str, str], make_project: ProjectFactory, tmp_path: Path,
) -> None:
    """The daemon's process writes to the caller's terminal itself: rich sees a terminal
    (colours, the live display) as `plan` run directly does."""
    proj = make_project(PLAN, files={"src/a.txt": "tty\n"})
    _start(warm_env)
    env = {k: v for k, v in warm_env.items() if k not in ("COLUMNS", "NO_COLOR", "CI")}
    env["TERM"] = "xterm-256color"
    outputs = {}
    for how, extra in (("daemon", {}), ("direct", {"CROSSPLAN_DAEMON": "0"})):
        outputs[how] = _in_pty(plan_argv("run", str(proj)), {
            **env, **extra, "CROSSPLAN_CACHE_DIR": str(tmp_path / how)})
    assert _status(warm_env)["served"] == 1
    for how, (code, text) in outputs.items():
        assert code == 0, (how, text)
        assert "\x1b[32mbuilt\x1b[0m" in text, (how, text)  # the result table, styled


def _in_pty(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    main, child = pty.openpty()
    proc = subprocess.Popen(argv, env=env, stdin=child, stdout=child, stderr=child,
                            start_new_session=True)
    os.close(child)
    chunks = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.2)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(main)
    return proc.wait(timeout=30), b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_ctrl_c_reaches_the_command(
    sig: signal.Signals, warm_env: dict[str, str], make_project: ProjectFactory,
    tmp_path: Path,
) -> None:
    """Ctrl-C (SIGINT to `plan` only, as a terminal sends it) is passed on: the step is
    killed, "interrupted", exit 130. A `plan` killed outright (SIGKILL: nothing to pass on)
    stops the command too, when its socket closes. The daemon goes on."""
    sleep = f"300.{uuid.uuid4().int % 10**9}"  # a unique `sleep` argument to find it by
    proj = make_project(SLOW.format(sleep=sleep), files={"src/a.txt": "a\n"})
    _start(warm_env)
    proc = subprocess.Popen(plan_argv("run", str(proj), "--progress", "plain"), env=warm_env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        wait_until(lambda: processes(f"sleep {sleep}") or proc.poll() is not None, 60,
                   "the step's sleep")
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if sig == signal.SIGINT:
        assert proc.returncode == 130, stderr
        assert stderr.rstrip().endswith("interrupted"), stderr
    else:
        assert proc.returncode == -signal.SIGKILL
    wait_until(lambda: not processes(f"sleep {sleep}"), 10, f"no `sleep {sleep}` left")
    status = _status(warm_env)
    assert status["running"] is True and status["served"] == 1  # the daemon goes on
    ls = _plan("cache", "ls", "--json", env={**warm_env, "CROSSPLAN_DAEMON": "0"})
    assert json.loads(ls.stdout) == [], ls.stdout  # the stopped step: nothing stored


def test_changed_code_is_never_served(
    cli_env: dict[str, str], make_project: ProjectFactory, tmp_path: Path,
) -> None:
    """A daemon serving a copy of crossplan: after a file of that copy changes, the next
    command runs without it (and succeeds), the daemon is gone, and a new one with the
    changed code serves the commands after it."""
    copy = tmp_path / "site"
    shutil.copytree(REPO / "crossplan", copy / "crossplan",
                    ignore=shutil.ignore_patterns("__pycache__"))
    directory = tempfile.mkdtemp(prefix="cpd-", dir="/tmp")
    env = {k: v for k, v in cli_env.items() if k != "CROSSPLAN_DAEMON"}
    env.update(CROSSPLAN_DAEMON_DIR=directory, PYTHONPATH=str(copy))
    try:
        started = _start(env)
        status = _status(env)
        assert Path(status["package"]) == copy / "crossplan", status
        proj = make_project(PLAN, files={"src/a.txt": "stale\n"})
        assert _plan("run", str(proj), env=env).returncode == 0
        assert _status(env)["served"] == 1
        assert _status(env)["stale"] is None
        run_py = copy / "crossplan" / "cli" / "run.py"
        run_py.write_text(run_py.read_text() + "\n# edited after the daemon started\n")
        assert _status(env)["stale"] == str(run_py)  # status says so, and serves nothing
        again = _plan("run", str(proj), "--json", env=env)
        assert again.returncode == 0, again.stderr
        assert f"{run_py} changed since it started" in again.stderr, again.stderr
        assert "a new one starts with the code now on disk" in again.stderr, again.stderr
        assert {s["status"] for s in json.loads(again.stdout)["steps"]} == {"cached"}
        wait_until(lambda: not _alive(int(started["pid"])), 10, "the stale daemon to exit")

        def replaced() -> bool:
            now = _status(env)
            return bool(now["running"]) and now["pid"] != started["pid"]

        wait_until(replaced, 30, "a new daemon to take the socket")
        fresh = _status(env)
        assert fresh["stale"] is None and Path(fresh["package"]) == copy / "crossplan"
        assert fresh["served"] == 0 and fresh["idle"] == started["idle"]
        served = _plan("run", str(proj), "--json", env=env)
        assert served.returncode == 0, served.stderr
        assert "daemon" not in served.stderr, served.stderr
        assert _status(env)["served"] == 1  # the new daemon ran it
        logs = "".join(p.read_text() for p in Path(directory).glob("*.log"))
        assert "Traceback" not in logs and "no new daemon" not in logs, logs
    finally:
        _plan("daemon", "stop", env=env)
        shutil.rmtree(directory, ignore_errors=True)


def test_a_socket_directory_others_can_enter_is_not_used(
    warm_env: dict[str, str], make_project: ProjectFactory,
) -> None:
    proj = make_project(PLAN, files={"src/a.txt": "open\n"})
    _start(warm_env)
    directory = Path(warm_env["CROSSPLAN_DAEMON_DIR"])
    directory.chmod(0o755)
    try:
        proc = _plan("run", str(proj), "--json", env=warm_env)
        assert proc.returncode == 0, proc.stderr  # ran here
    finally:
        directory.chmod(0o700)
    assert _status(warm_env)["served"] == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


assert sys.platform == "linux"  # AF_UNIX descriptor passing, /proc


ULIMIT = """\
[project]
name = "limits"
platforms = ["linux/amd64"]

[steps.limits]
kind = "shell"
src = "src/"
command = ["sh", "-c", "ulimit -n > n.txt"]
outputs = ["n.txt"]
"""


def _limited(soft: int, hard: int) -> Any:
    """A preexec_fn giving the process (and so `plan` and its children) these open-file
    limits."""
    import resource

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return apply


def _seen_limit(argv: list[str], env: dict[str, str], store: Path,
                preexec: Any) -> tuple[int, subprocess.CompletedProcess[str]]:
    """The open-file limit the step's command saw (``ulimit -n``, from its stored output)."""
    proc = subprocess.run(argv, env={**env, "CROSSPLAN_CACHE_DIR": str(store)},
                          capture_output=True, text=True, timeout=120, check=False,
                          preexec_fn=preexec)
    assert proc.returncode == 0, proc.stderr
    digest = json.loads(proc.stdout)["steps"][0]["outputs"]["n.txt"]
    return int((store / "blobs" / digest[:2] / digest).read_text()), proc


def test_the_callers_resource_limits_are_the_commands(
    warm_env: dict[str, str], make_project: ProjectFactory, tmp_path: Path,
) -> None:
    """`ulimit -n` in the caller's shell is what the build's processes get through the
    daemon; limits the daemon cannot take (a hard limit above its own) are declined: the
    command runs without it, saying so, with the caller's limits."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft > 300, "the test lowers the open-file limit below the current one"
    proj = make_project(ULIMIT, files={"src/keep.txt": "x\n"})
    argv = plan_argv("run", str(proj), "--json")
    # the daemon started with the caller's limits; a command run with a lower soft limit
    started = _start(warm_env)
    seen, proc = _seen_limit(argv, warm_env, tmp_path / "a", _limited(256, hard))
    assert seen == 256, proc.stderr
    assert _status(warm_env)["served"] == 1
    doctor = _plan("doctor", "--json", env=warm_env)  # served too: it reports the daemon
    line = next(c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "plan daemon")
    assert line["status"] == "ok" and f"pid {started['pid']}" in line["detail"], line
    assert _status(warm_env)["served"] == 2
    seen, proc = _seen_limit(argv, warm_env, tmp_path / "b", None)  # the shell's own again
    assert seen == soft and _status(warm_env)["served"] == 3
    _plan("daemon", "stop", env=warm_env)

    # a daemon started under a lower hard limit cannot raise a command's: declined
    start = subprocess.run(plan_argv("daemon", "start", "--json"), env=warm_env,
                           capture_output=True, text=True, timeout=120, check=False,
                           preexec_fn=_limited(200, 200))
    assert start.returncode == 0, start.stderr
    seen, proc = _seen_limit(argv, warm_env, tmp_path / "c", None)
    assert seen == soft  # as without a daemon
    if _status(warm_env)["served"] == 1:  # a daemon allowed to raise hard limits took them
        assert os.geteuid() == 0 and not proc.stderr.count("cannot run this command")
        return
    assert _status(warm_env)["served"] == 0
    assert "cannot run this command as this shell would" in proc.stderr, proc.stderr
    assert "RLIMIT_NOFILE" in proc.stderr and "200" in proc.stderr, proc.stderr


def test_a_command_with_other_python_options_runs_without_the_daemon(
    warm_env: dict[str, str], make_project: ProjectFactory,
) -> None:
    """`python -X importtime -m crossplan.cli run` with a daemon running: the daemon's
    process for it would not have the option (nothing would be timed), so the command runs
    here, with it, saying so; -u (unbuffered output) is passed on and served."""
    proj = make_project(PLAN, files={"src/a.txt": "options\n"})
    _start(warm_env)
    timed = subprocess.run([sys.executable, "-X", "importtime", "-m", "crossplan.cli", "run",
                            str(proj), "--json"], env=warm_env, capture_output=True, text=True,
                           timeout=120, check=False)
    assert timed.returncode == 0, timed.stderr
    assert "cannot run this command as this shell would (python options -Ximporttime" \
        in timed.stderr, timed.stderr
    assert "import time:" in timed.stderr and "crossplan.planner" in timed.stderr
    assert _status(warm_env)["served"] == 0
    unbuffered = subprocess.run([sys.executable, "-u", "-m", "crossplan.cli", "run",
                                 str(proj), "--json"], env=warm_env, capture_output=True,
                                text=True, timeout=120, check=False)
    assert unbuffered.returncode == 0 and "daemon" not in unbuffered.stderr, unbuffered.stderr
    assert _status(warm_env)["served"] == 1
    assert json.loads(unbuffered.stdout)["steps"]


def _state(pid: int) -> str:
    """A process's state letter (R, S, T stopped, Z...), "gone" once it has ended."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def test_ctrl_z_stops_the_command_and_fg_continues_it(
    warm_env: dict[str, str], make_project: ProjectFactory, tmp_path: Path,
) -> None:
    """Ctrl-Z (SIGTSTP to `plan`, as a terminal sends it): the daemon's process for the
    command stops, then `plan` itself (the shell sees a stopped job); SIGCONT (fg, bg)
    continues both and the command ends as usual."""
    sleep = f"2.{uuid.uuid4().int % 10**9}"
    proj = make_project(SLOW.format(sleep=sleep), files={"src/a.txt": "z\n"})
    daemon = int(_start(warm_env)["pid"])
    # a process group of its own in this session (as a shell's job: in a new session it
    # would be orphaned, and the kernel discards a stop signal's default action there)
    proc = subprocess.Popen(plan_argv("run", str(proj), "--json"), env=warm_env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            process_group=0)
    try:
        wait_until(lambda: processes(f"sleep {sleep}") or proc.poll() is not None, 60,
                   "the step's sleep")
        forks = [p for p in processes(str(warm_env["CROSSPLAN_DAEMON_DIR"])) if p != daemon]
        assert len(forks) == 1, forks  # the daemon's process running this command
        fork = forks[0]
        proc.send_signal(signal.SIGTSTP)
        wait_until(lambda: _state(proc.pid) == "T" and _state(fork) == "T", 10,
                   "`plan` and the daemon's process stopped")
        proc.send_signal(signal.SIGCONT)
        wait_until(lambda: _state(fork) != "T", 10, "the daemon's process continued")
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert {s["status"] for s in json.loads(out)["steps"]} == {"built"}
