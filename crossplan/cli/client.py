"""Hands a `plan` command to a running daemon (cli/daemon.py): this process's stdin, stdout
and stderr, argv, working directory, environment and umask; forwards signals; returns the
command's exit code. Imports nothing heavy: it runs before anything else in `plan`.

The daemon's socket is in a directory only this user can enter (``CROSSPLAN_DAEMON_DIR``,
else ``$XDG_RUNTIME_DIR/crossplan``, else ``/tmp/crossplan-<uid>``), named after the
interpreter and the crossplan package it serves, so a daemon serves only the installation
that started it. ``CROSSPLAN_DAEMON=0`` runs every command in this process."""

from __future__ import annotations

import contextlib
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Mapping
    from io import BufferedReader

__all__ = ["OFF", "delegate", "disabled", "private", "send", "socket_dir", "socket_path"]

OFF = ("0", "off", "no", "false")
# The signals a terminal or a CI runner sends to stop a command: passed on to the daemon's
# process running it (which stops as `plan` itself would: exit 130 on Ctrl-C).
_FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
_HEADER = 4  # the request's length, big-endian, sent with the three descriptors


def disabled(environ: Mapping[str, str]) -> bool:
    return environ.get("CROSSPLAN_DAEMON", "").lower() in OFF


def socket_dir(environ: Mapping[str, str]) -> str:
    explicit = environ.get("CROSSPLAN_DAEMON_DIR")
    if explicit:
        return explicit
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, "crossplan")
    return f"/tmp/crossplan-{os.getuid()}"


def socket_path(environ: Mapping[str, str]) -> str:
    """The socket of the daemon serving this Python environment's crossplan package."""
    import zlib

    package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    # the environment (a venv's prefix: two venvs of one checkout are two installations),
    # the interpreter and the package
    ident = f"{sys.prefix}\0{sys.executable}\0{package}".encode()
    return os.path.join(socket_dir(environ), f"daemon-{zlib.crc32(ident):08x}.sock")


def private(directory: str) -> bool:
    """Whether ``directory`` is this user's and no one else's (a socket in a directory
    another user controls could be theirs: it would be handed our environment)."""
    try:
        st = os.stat(directory)
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o077


def delegate(argv: list[str], environ: Mapping[str, str] | None = None) -> int | None:
    """Run ``plan <argv>`` in the daemon: its exit code, or None when no daemon runs for
    this installation (or it could not take the command: the caller runs it itself)."""
    env = dict(os.environ if environ is None else environ)
    if disabled(env):
        return None
    path = socket_path(env)
    if not private(os.path.dirname(path)):
        return None
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            sock.connect(path)
            replies = send(sock, _request(argv, env), [0, 1, 2])
            first = _reply(replies)
        except OSError:
            return None  # not running (a socket left behind), or a descriptor closed here
        if first is not None and first.get("stale"):
            sys.stderr.write(f"plan: the crossplan daemon stopped: {first['stale']} changed "
                             "since it started; this command runs without it (`plan daemon "
                             "start` starts a new one)\n")
        if first is not None and first.get("declined"):
            sys.stderr.write(f"plan: the crossplan daemon cannot run this command as this "
                             f"shell would ({first['declined']}); it runs without it (`plan "
                             "daemon stop`, then `plan daemon start` from this shell)\n")
        if first is None or "pid" not in first:
            return None  # stale (crossplan changed since it started) or gone: nothing ran
        return _wait(replies, int(first["pid"]))  # type: ignore[call-overload]
    finally:
        sock.close()


def send(sock: socket.socket, request: dict[str, object], fds: list[int]) -> BufferedReader:
    """Send ``request`` (its length first, with ``fds`` attached) on a connected socket;
    returns the reader of the daemon's replies (one JSON object per line)."""
    import json
    import socket

    body = json.dumps(request).encode()
    socket.send_fds(sock, [len(body).to_bytes(_HEADER, "big")], fds)
    sock.sendall(body)
    return sock.makefile("rb")


def _request(argv: list[str], env: dict[str, str]) -> dict[str, object]:
    mask = os.umask(0o022)
    os.umask(mask)
    return {"cmd": "run", "argv": [sys.argv[0], *argv], "cwd": os.getcwd(), "env": env,
            "umask": mask, "limits": limits()}


def limits() -> dict[str, list[int]]:
    """This process's resource limits (`ulimit`): the daemon's process for the command takes
    them (the build's processes inherit them), or declines the command."""
    import resource

    return {name: list(resource.getrlimit(getattr(resource, name)))
            for name in LIMITS if hasattr(resource, name)}


# What `ulimit` sets that a build's processes feel: open files, core files, stack, file
# size, CPU time, processes, locked memory, and the memory limits (-v, -d).
LIMITS = ("RLIMIT_NOFILE", "RLIMIT_CORE", "RLIMIT_STACK", "RLIMIT_FSIZE", "RLIMIT_CPU",
          "RLIMIT_NPROC", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_DATA")


def _reply(replies: BufferedReader) -> dict[str, object] | None:
    import json

    line = replies.readline()
    if not line:
        return None
    doc = json.loads(line)
    return doc if isinstance(doc, dict) else None


def _wait(replies: BufferedReader, pid: int) -> int:
    """Forward signals to the daemon's process ``pid`` until it sends its exit code."""
    import signal

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)

    for name in _FORWARDED:
        signal.signal(getattr(signal, name), forward)
    try:
        last = _reply(replies)
    except (OSError, ValueError):
        last = None
    if last is None or not isinstance(last.get("exit"), int):
        sys.stderr.write(f"plan: the crossplan daemon's process {pid} ended without an exit "
                         "status (killed?); its output above is all there is\n"
                         "  hint: `plan daemon status`; CROSSPLAN_DAEMON=0 runs commands "
                         "without it\n")
        return 1
    code: int = last["exit"]  # type: ignore[assignment]
    return code
