"""Starting a daemon (`plan daemon start`, a command on a terminal that finds none, a stale
daemon's replacement) and the one check every start and every hand-over makes: the socket's
directory is this user's alone. Imports nothing at start but os and sys (cli/client.py)."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is not imported: cli/client.py imports this module
if TYPE_CHECKING:
    from typing import Any

__all__ = ["log_path", "private", "spawn"]


def private(directory: str) -> bool:
    """Whether ``directory`` is this user's and no one else's (a socket in a directory
    another user controls could be theirs: it would be handed our environment)."""
    try:
        st = os.stat(directory)
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o077


def log_path(sock: str) -> str:
    """The daemon's log, beside its socket."""
    return sock.removesuffix(".sock") + ".log"


def spawn(sock: str, idle: float, *, wait: bool = True) -> dict[str, Any]:
    """Start a detached daemon on ``sock`` (its log beside it) and wait until it accepts
    commands (``wait``): its pid, socket, log and idle time. EnvironmentProblem if it did
    not start. Not waiting (a command starting one for the next), a failure is in the log;
    of two daemons started at once for one socket, the later one exits (cli/daemon.py)."""
    import subprocess

    from crossplan.errors import EnvironmentProblem

    directory = os.path.dirname(sock)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot make the daemon's directory {directory}: {exc}",
                                 hint="set CROSSPLAN_DAEMON_DIR to a directory of yours") from exc
    if not private(directory):
        raise EnvironmentProblem(
            f"{directory} is not private to this user: the daemon's socket cannot go there",
            hint=f"chmod 700 {directory} (if it is yours), or set CROSSPLAN_DAEMON_DIR")
    log = log_path(sock)
    read, write = os.pipe() if wait else (-1, -1)
    code = "import sys; from crossplan.cli.daemon import main; main(sys.argv[1:])"
    with open(log, "ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, sock, str(idle), str(write)],
            pass_fds=(write,) if wait else (), stdin=subprocess.DEVNULL, stdout=log_file,
            stderr=log_file, start_new_session=True,
            env={**os.environ, "CROSSPLAN_DAEMON": "0"}, cwd="/")
    if not wait:
        return {"pid": proc.pid, "socket": sock, "log": log, "idle": idle}
    os.close(write)
    with os.fdopen(read, "rb") as ready:
        line = ready.readline()  # the pid once it accepts commands; EOF if it failed
    if not line:
        proc.wait(timeout=30)
        tail = _tail(log)
        raise EnvironmentProblem(f"the crossplan daemon did not start (exit {proc.returncode})"
                                 + (f":\n{tail}" if tail else ""), hint=f"full log: {log}")
    return {"pid": int(line), "socket": sock, "log": log, "idle": idle}


def _tail(path: str, lines: int = 12) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip()
    except OSError:
        return ""
