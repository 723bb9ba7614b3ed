"""The crossplan daemon: a process with crossplan and its libraries imported that forks one
child per `plan` command (cli/client.py hands it over), so a command starts warm instead of
paying ~0.4 s of imports. The child becomes the caller: its descriptors, argv, directory,
environment and umask; what it computes is what `plan` run directly computes.

Nothing is shared between commands but imported code: the daemon never plans or runs
anything itself (no caches filled, no threads), and each command runs in a fresh fork of
it. A daemon whose code changed on disk (crossplan's files or the installed distributions:
the no-op memo's code signature) declines the next command (which then runs without it)
and exits; a new daemon with the code now on disk takes its place."""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import os
import pkgutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from crossplan.cli import become, client, noop
from crossplan.cli.spawn import private

__all__ = ["PRELOAD", "main", "preload", "serve"]

# Besides every crossplan module: libraries crossplan imports only when a run needs them.
PRELOAD = ("deflate", "elftools.elf.elffile", "elftools.elf.dynamic", "filelock", "isal.isal_zlib",
           "typer._click.decorators", "encodings.hex_codec")
# Not preloaded: the REAPI client (it sets GRPC_VERBOSITY for grpc, whose threads must not
# exist in a process that forks) and `python -m` entry points.
_SKIP = ("crossplan.executors.reapi", "crossplan_protos")
IDLE_SECONDS = client.IDLE_SECONDS


def preload() -> int:
    """Import crossplan's modules and the libraries its runs use, and make the CLI's Click
    commands; how many modules."""
    import crossplan

    def walk(path: list[str], prefix: str) -> None:
        for info in pkgutil.iter_modules(path, prefix):
            if info.name.startswith(_SKIP) or info.name.endswith(".__main__"):
                continue
            module = importlib.import_module(info.name)
            if info.ispkg:
                walk(list(module.__path__), info.name + ".")

    walk(list(crossplan.__path__), "crossplan.")
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    from crossplan.cli import commands

    for full in (False, True):  # the Click commands every command would otherwise make
        _warm_params(commands.click_command(full))
    _build_models()
    from crossplan.backends.oci.deflate import libdeflate_identity

    libdeflate_identity()  # the layer encoding's fingerprint of libdeflate (~3 ms of each run)
    return len(sys.modules)


def _warm_params(command: object) -> None:
    """Each option's value converter, which Typer builds on a parameter's first use (a
    pydantic adapter per option: ~8 ms of parsing `plan run`'s options in every fork)."""
    for param in getattr(command, "params", ()):
        warm = getattr(param, "get_runtime_param", None)
        if warm is not None:
            warm()
    for sub in getattr(command, "commands", {}).values():
        _warm_params(sub)


def _build_models() -> None:
    """The recipe models' validators and serializers, which pydantic builds on first use
    (``defer_build``: `plan --help` never pays for them; ~10 ms of each planned run)."""
    from pydantic import BaseModel

    for name, module in list(sys.modules.items()):
        if not name.startswith("crossplan.") or module is None:
            continue
        for obj in list(vars(module).values()):
            if (isinstance(obj, type) and issubclass(obj, BaseModel) and obj is not BaseModel
                    and obj.__module__ == name):
                obj.model_rebuild(force=True)


def _changed(snap: list[object], now: list[object]) -> str | None:
    """What differs between two code signatures (``noop.code_signature``: crossplan's
    files, the installed distributions): a path, or None when they are the same."""
    if snap == now:
        return None
    files_then, dists_then = snap
    files_now, dists_now = now
    before = {f[0]: f for f in files_then}  # type: ignore[attr-defined]
    after = {f[0]: f for f in files_now}  # type: ignore[attr-defined]
    for path in sorted(before.keys() | after.keys()):
        if before.get(path) != after.get(path):
            return str(path)
    added = sorted(set(dists_now) ^ set(dists_then))  # type: ignore[call-overload]
    return f"the installed distributions ({', '.join(added)})"


def serve(path: str, *, idle: float = IDLE_SECONDS, ready: int | None = None) -> None:
    """Listen on ``path`` until idle for ``idle`` seconds, SIGTERM, or stale code. ``ready``:
    a descriptor to write this process's pid to once it accepts commands. A daemon that
    finds another serving (or starting on) ``path`` exits at once."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if not private(directory):
        raise PermissionError(f"{directory} is not private to this user (mode 0700, owned)")
    lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:  # held while it serves; each command's fork closes its copy
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        print(f"crossplan daemon: another daemon serves {path}: not started", flush=True)
        return
    enabled = gc.isenabled()
    gc.disable()
    modules = preload()
    gc.freeze()  # imported objects are never collected: forks share their pages
    if enabled:
        gc.enable()
    if threading.active_count() != 1:
        raise RuntimeError(f"threads running after the imports: {threading.enumerate()}")
    snap = noop.code_signature()  # what the no-op memo calls the code, too
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = f"{path}.{os.getpid()}"
    listener.bind(tmp)
    inode = os.stat(tmp).st_ino
    os.rename(tmp, path)  # replaces a socket a dead daemon left
    listener.listen(64)
    listener.settimeout(idle)
    state: dict[str, Any] = {
        "pid": os.getpid(), "socket": path, "started": time.time(), "served": 0,
        "modules": modules, "python": sys.executable, "idle": idle,
        "package": str(Path(__file__).resolve().parents[1])}
    stop: list[str] = []
    # each command's process writes a byte here: what `served` counts (not status requests)
    served_r, served_w = os.pipe()
    os.set_blocking(served_r, False)

    def on_term(_signum: int, _frame: object) -> None:
        stop.append("SIGTERM")
        listener.close()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    if ready is not None:
        os.write(ready, f"{os.getpid()}\n".encode())
        os.close(ready)
    try:
        while not stop:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                break
            except OSError:
                if stop:
                    break
                raise
            state["served"] = int(state["served"]) + _drain(served_r)
            if os.fork() == 0:
                try:
                    os.close(served_r)
                    os.close(lock)  # a new daemon may start while this command runs
                    _child(conn, listener, snap, state, served_w)
                except BaseException:  # a bug: on the caller's stderr once it is the caller's
                    import traceback

                    traceback.print_exc()
                finally:
                    os._exit(70)  # _child never returns
            conn.close()
    finally:
        try:
            if os.stat(path).st_ino == inode:  # not a newer daemon's
                os.unlink(path)
        except OSError:
            pass
        listener.close()


def main(argv: list[str]) -> None:
    """``python -c 'from crossplan.cli.daemon import main; main(...)' SOCKET IDLE READY_FD``
    (what `plan daemon start` runs, detached; READY_FD -1: nobody waits for it)."""
    path, idle, ready = argv
    serve(path, idle=float(idle), ready=int(ready) if int(ready) >= 0 else None)


def _drain(fd: int) -> int:
    count = 0
    while True:
        try:
            got = os.read(fd, 4096)
        except BlockingIOError:
            return count
        if not got:
            return count
        count += len(got)


def _peer_uid(conn: socket.socket) -> int:
    import struct

    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _read(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    head, fds, _flags, _addr = socket.recv_fds(conn, 4, 3)
    if len(head) != 4:
        raise ValueError("short request")
    body = client.recv_exactly(conn, int.from_bytes(head, "big"))
    if body is None:
        raise ValueError("truncated request")
    return client.decode(body), fds  # the wire: cli/client.py


def _send(conn: socket.socket, doc: dict[str, Any]) -> None:
    conn.sendall(client.encode(doc))


def _child(conn: socket.socket, listener: socket.socket, snap: list[object],
           state: dict[str, Any], served: int) -> None:
    """One command, in a fresh fork: become the caller and run `plan`."""
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    listener.close()
    try:
        if _peer_uid(conn) != os.getuid():
            os._exit(0)
        request, fds = _read(conn)
    except (OSError, ValueError):
        os._exit(0)
    cmd = request.get("cmd")
    if cmd == "status":
        _send(conn, {**state, "uptime": round(time.time() - float(state["started"]), 1),
                     "stale": _changed(snap, noop.code_signature())})
        os._exit(0)
    stale = _changed(snap, noop.code_signature())
    if cmd == "stop" or stale:
        restart = bool(stale) and cmd == "run"
        _send(conn, {"stopping": True, "stale": stale, "restarting": restart})
        conn.close()
        for fd in fds:  # the caller's stdio: its reader must not wait on this process
            os.close(fd)
        os.kill(int(state["pid"]), signal.SIGTERM)
        if restart:
            _restart(state)
        os._exit(0)
    if cmd != "run" or len(fds) != 3:
        os._exit(0)
    declined = become.declined(request)
    if declined:
        _send(conn, {"declined": declined})
        os._exit(0)
    os.write(served, b"+")
    os.close(served)
    _send(conn, {"pid": os.getpid()})
    done = threading.Event()
    threading.Thread(target=_stop_when_caller_gone, args=(conn, done), daemon=True,
                     name="caller-watch").start()
    code = become.run(request, fds)
    done.set()
    with contextlib.suppress(OSError):
        _send(conn, {"exit": code})
    os._exit(code)


def _restart(state: dict[str, Any]) -> None:
    """After a stale daemon stopped: a new one, with the code now on disk, on the same socket
    with the same idle time and environment. It is started once the old one has gone (so
    the old one's exit never removes the new one's socket); if it cannot start (the new code
    is broken), this daemon's log says why and commands run without one."""
    from crossplan.cli.spawn import spawn

    deadline = time.monotonic() + 10
    while os.getppid() == state["pid"] and time.monotonic() < deadline:
        time.sleep(0.01)  # the old daemon (this process's parent) exits on its SIGTERM
    try:
        spawn(str(state["socket"]), float(state["idle"]))
    except Exception as exc:  # whatever it was (the new code may be broken): logged
        print(f"crossplan daemon: no new daemon started: {exc}", file=sys.stderr, flush=True)


def _stop_when_caller_gone(conn: socket.socket, done: threading.Event) -> None:
    """The caller (`plan`) closed its end before the command ended: it was killed with
    nothing to pass on (SIGKILL). Stop the command as Ctrl-C would."""
    import select

    poller = select.poll()
    poller.register(conn.fileno(), select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    with contextlib.suppress(OSError, ValueError):
        poller.poll()
    if not done.is_set():
        os.kill(os.getpid(), signal.SIGINT)
