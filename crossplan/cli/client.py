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

from crossplan.cli.spawn import private

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket
    from collections.abc import Mapping

__all__ = ["IDLE_SECONDS", "OFF", "QUIET_SECONDS", "connect", "decode", "delegate",
           "disabled", "encode", "exit_now", "hush", "private", "quiet", "receive",
           "recv_exactly", "send", "socket_dir", "socket_path", "starts_one"]

OFF = ("0", "off", "no", "false")
IDLE_SECONDS = 3 * 3600  # a daemon unused this long ends
# After a command started a daemon (or `plan daemon stop`), none is started for this long:
# a daemon that cannot start costs one try, and a stopped one is not back at once.
QUIET_SECONDS = 600.0
# The signals a terminal or a CI runner sends to stop a command: passed on to the daemon's
# process running it (which stops as `plan` itself would: exit 130 on Ctrl-C).
_FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
_HEADER = 4  # a message's length, big-endian (the request's sent with the three descriptors)


def disabled(environ: Mapping[str, str]) -> bool:
    return environ.get("CROSSPLAN_DAEMON", "").lower() in OFF


def starts_one(environ: Mapping[str, str]) -> bool:
    """Whether a command that finds no daemon starts one for the next commands: on a
    terminal (stderr), outside CI, unless CROSSPLAN_DAEMON says otherwise ("manual": use
    one if it runs, never start one; "0": never use one)."""
    mode = environ.get("CROSSPLAN_DAEMON", "auto").lower() or "auto"
    return mode == "auto" and not environ.get("CI") and os.isatty(2)


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


def delegate(argv: list[str], environ: Mapping[str, str] | None = None) -> int | None:
    """Run ``plan <argv>`` in the daemon: its exit code, or None when no daemon runs for
    this installation (or it could not take the command: the caller runs it itself)."""
    env = dict(os.environ if environ is None else environ)
    if disabled(env):
        return None
    path = socket_path(env)
    directory = os.path.dirname(path)
    if not private(directory):
        if not os.path.lexists(directory) and starts_one(env):
            _start_one(path)
        return None
    try:
        sock = connect(path)
    except OSError:  # not running (a socket left behind)
        if starts_one(env) and not quiet(path):
            _start_one(path)
        return None
    try:
        try:
            send(sock, _request(argv, env), [0, 1, 2])
            first = receive(sock)
        except (OSError, ValueError):
            return None  # a descriptor closed here, or the daemon went away: nothing ran
        if first is not None and first.get("stale"):
            then = ("a new one starts with the code now on disk" if first.get("restarting")
                    else "`plan daemon start` starts a new one")
            sys.stderr.write(f"plan: the crossplan daemon stopped: {first['stale']} changed "
                             f"since it started; this command runs without it ({then})\n")
        if first is not None and first.get("declined"):
            sys.stderr.write(f"plan: the crossplan daemon cannot run this command as this "
                             f"shell would ({first['declined']}); it runs without it (`plan "
                             "daemon stop`, then `plan daemon start` from this shell)\n")
        if first is None or "pid" not in first:
            return None  # stale (crossplan changed since it started) or gone: nothing ran
        return _wait(sock, int(first["pid"]))  # type: ignore[call-overload]
    finally:
        sock.close()


def quiet(path: str) -> bool:
    """Whether a daemon was started for (or stopped on) ``path`` less than QUIET_SECONDS
    ago: then a command that finds none starts none."""
    import time

    try:
        return time.time() - os.stat(path.removesuffix(".sock") + ".auto").st_mtime \
            < QUIET_SECONDS
    except OSError:
        return False


def hush(path: str) -> None:
    """No daemon started on ``path`` for QUIET_SECONDS from now."""
    try:
        with open(path.removesuffix(".sock") + ".auto", "w"):
            pass
    except OSError:
        pass


def _start_one(path: str) -> None:
    """Start a daemon in the background for the commands after this one (this one runs
    here; the daemon's imports take the other core meanwhile), saying so."""
    from crossplan.cli.spawn import spawn
    from crossplan.errors import CrossplanError

    try:
        started = spawn(path, IDLE_SECONDS, wait=False)
    except (CrossplanError, OSError):
        return  # this command runs as without a daemon; `plan daemon start` says why
    hush(path)
    sys.stderr.write(f"plan: starting a crossplan daemon (pid {started['pid']}) for the next "
                     "commands; `plan daemon stop` ends it, CROSSPLAN_DAEMON=manual turns "
                     "this off\n")


def exit_now(code: int) -> None:
    """End this process with the command's exit code, its output flushed: nothing else was
    done here that finalizing the interpreter would finish (~3 ms of a delegated command)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


# The wire: the request and each reply are a 4-byte big-endian length and a marshal'd dict
# (the request with the caller's three descriptors attached). Both ends are one
# installation's interpreter (the socket is named after it), in a directory only this user
# enters. `_socket` and `marshal` are built in: the client starts ~10 ms sooner than with
# `socket` (enum, selectors) and `json` (re) imported, on every command a daemon runs.


def connect(path: str, timeout: float | None = None) -> _socket.socket:
    """A connected stream socket to the daemon at ``path``; OSError when none listens."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def send(sock: _socket.socket, request: dict[str, object], fds: list[int]) -> None:
    """Send ``request`` on a connected socket, with ``fds`` attached."""
    import _socket
    import array

    message = encode(request)
    ancillary = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    sent = sock.sendmsg([message], ancillary)
    if sent < len(message):  # sendall(b"") still calls send(): EPIPE once the daemon's
        sock.sendall(message[sent:])  # fork has answered and closed (a fast command)


def receive(sock: _socket.socket) -> dict[str, object] | None:
    """The next reply on ``sock``; None when the daemon closed it. ValueError: not a reply."""
    head = recv_exactly(sock, _HEADER)
    if head is None:
        return None
    body = recv_exactly(sock, int.from_bytes(head, "big"))
    if body is None:
        raise ValueError("truncated reply")
    return decode(body)


def decode(body: bytes) -> dict[str, object]:
    """A message's body; ValueError when it is not one (not marshal data, or not a dict)."""
    import marshal

    try:
        doc = marshal.loads(body)
    except (EOFError, TypeError) as exc:
        raise ValueError(f"not a message: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("not a message")
    return doc


def encode(doc: dict[str, object]) -> bytes:
    """One message as it goes on the wire (the daemon's replies)."""
    import marshal

    body = marshal.dumps(doc)
    return len(body).to_bytes(_HEADER, "big") + body


def recv_exactly(sock: _socket.socket, size: int) -> bytes | None:
    """``size`` bytes from ``sock``; None when it is closed before the first."""
    got = bytearray()
    while len(got) < size:
        chunk = sock.recv(size - len(got))
        if not chunk:
            if got:
                raise ValueError("truncated message")
            return None
        got += chunk
    return bytes(got)


def _request(argv: list[str], env: dict[str, str]) -> dict[str, object]:
    mask = os.umask(0o022)
    os.umask(mask)
    return {"cmd": "run", "argv": [sys.argv[0], *argv], "cwd": os.getcwd(), "env": env,
            "umask": mask, "limits": limits(), "options": interpreter_options(),
            "unbuffered": bool(getattr(sys.stdout, "write_through", False))}  # -u


def interpreter_options() -> list[str]:
    """The options of this interpreter that change what a command does (-X, -W, -O, -v, -d
    and dev mode, given as options or PYTHON* variables), in python's letters. A daemon's
    process for a command has the daemon's: it declines a command whose differ (`python -X
    importtime -m crossplan.cli ...` then runs here, with its option). -u is passed on."""
    flags = sys.flags
    opts = [f"-X{k}" if v is True else f"-X{k}={v}" for k, v in sorted(sys._xoptions.items())]
    opts += [f"-W{w}" for w in sys.warnoptions]
    opts += [f"-{letter * int(getattr(flags, name))}" for name, letter in
             (("optimize", "O"), ("verbose", "v"), ("debug", "d")) if getattr(flags, name)]
    if flags.dev_mode and "-Xdev" not in opts:
        opts.append("-Xdev")
    return opts


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


def _wait(sock: _socket.socket, pid: int) -> int:
    """Forward signals to the daemon's process ``pid`` until it sends its exit code."""
    import signal

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)

    def suspend(_signum: int, _frame: object) -> None:
        """Ctrl-Z: the daemon's process stops, then this one, as the shell expects of a
        job; `fg`/`bg` (SIGCONT) continue both (a sandboxed step's processes, in a session
        of their own, go on either way, as without a daemon)."""
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGSTOP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stopped here until SIGCONT
        signal.signal(signal.SIGTSTP, suspend)

    for name in _FORWARDED:
        signal.signal(getattr(signal, name), forward)
    signal.signal(signal.SIGTSTP, suspend)
    signal.signal(signal.SIGCONT, forward)
    try:
        last = receive(sock)
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
