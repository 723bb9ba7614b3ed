"""Run a step's commands on the build platform in its work dir, with a scrubbed environment."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from crossplan.errors import EnvironmentProblem
from crossplan.platforms import Platform

__all__ = [
    "PASS_THROUGH",
    "Interrupted",
    "allow_commands",
    "base_env",
    "follow",
    "log_tail",
    "run_commands",
    "stop_commands",
    "stopping",
]

# Host variables every step sees (not in keys: they don't change what a hermetic step makes).
PASS_THROUGH = ("PATH", "LANG", "TERM")


def base_env(
    *,
    workdir: Path,
    target: Platform | None,
    build: Platform,
    source_date_epoch: int,
    host_env: Mapping[str, str],
    allowlist: Sequence[str] = (),
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a step: allowlisted host vars, buildx-style TARGET*/BUILD* args,
    SOURCE_DATE_EPOCH, HOME and TMPDIR inside the work dir, then the recipe's own env."""
    env = {k: host_env[k] for k in (*PASS_THROUGH, *allowlist) if k in host_env}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["LC_ALL"] = "C"
    env["TZ"] = "UTC"
    home = workdir / ".home"
    tmp = workdir / ".tmp"
    home.mkdir(exist_ok=True)
    tmp.mkdir(exist_ok=True)
    env["HOME"] = str(home)
    env["TMPDIR"] = str(tmp)
    env["SOURCE_DATE_EPOCH"] = str(source_date_epoch)
    env.update(build.build_args("BUILD"))
    if target is not None:
        env.update(target.build_args("TARGET"))
    if extra:
        env.update(extra)
    return env


def run_commands(
    commands: Sequence[Sequence[str]],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: Path,
    step: str,
) -> int:
    """Run commands in order, appending stdout+stderr to ``log``; the first failure's exit
    code is returned (0 when all succeed). A missing program is an EnvironmentProblem, and so
    is a failure while the work dir's filesystem is full.

    Each command runs in its own process group and (Linux) with PR_SET_PDEATHSIG=SIGKILL, so
    a SIGKILL of this process takes the command down; on any exception here (a
    KeyboardInterrupt included) the whole group is killed and reaped. After
    ``stop_commands()``, a command killed by it (or about to start) raises Interrupted."""
    try:
        with open(log, "ab") as out:
            for argv in commands:
                out.write(f"$ {' '.join(argv)}\n".encode())
                out.flush()
                started = time.monotonic()
                code = _run_one(argv, cwd=cwd, env=env, out=out, step=step)
                out.write(f"# exit {code} in {time.monotonic() - started:.2f}s\n".encode())
                if code != 0:
                    _raise_if_full(cwd, step)
                    return code
    except OSError as exc:
        if exc.errno in _FULL:
            _raise_if_full(cwd, step, force=True)
        raise
    return 0


def _run_one(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], out: Any, step: str
) -> int:
    if _STOPPING.is_set():
        raise Interrupted(step)
    try:
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, process_group=0, preexec_fn=_die_with(os.getpid()),
        )
    except (FileNotFoundError, PermissionError) as exc:
        # EACCES too: exec's PATH search reports it when a PATH entry is not searchable
        what = "not found" if isinstance(exc, FileNotFoundError) else "not found or not executable"
        raise EnvironmentProblem(
            f"program {what}: {argv[0]}", step=step,
            hint=f"install {argv[0]} or put it on PATH (PATH={env.get('PATH', '')})",
        ) from None
    with _GROUPS_LOCK:
        _GROUPS.add(proc.pid)
        if _STOPPING.is_set():  # stop_commands() ran between the check above and now
            _kill_group(proc.pid)
    try:
        code = proc.wait()
    except BaseException:
        _kill_group(proc.pid)
        proc.wait()
        raise
    finally:
        with _GROUPS_LOCK:
            _GROUPS.discard(proc.pid)
    if _STOPPING.is_set() and code != 0:
        raise Interrupted(step)
    return code


class Interrupted(KeyboardInterrupt):
    """A step's command was stopped by ``stop_commands()`` (Ctrl-C, SIGTERM): not a failure
    of the step. A KeyboardInterrupt, so no ``except Exception`` turns it into one."""


def stop_commands() -> None:
    """Kill every running command's process group (a sandboxed one takes its sandbox down:
    bwrap runs with --die-with-parent in its own pid namespace) and refuse new ones until
    ``allow_commands()``. Safe from a signal handler and from any thread."""
    _STOPPING.set()
    with _GROUPS_LOCK:
        groups = tuple(_GROUPS)
    for group in groups:
        _kill_group(group)


def allow_commands() -> None:
    """Undo ``stop_commands()`` (a new run in the same process, e.g. ``--watch``)."""
    _STOPPING.clear()


def stopping() -> bool:
    """Whether ``stop_commands()`` was called (and not undone)."""
    return _STOPPING.is_set()


def _kill_group(group: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(group, signal.SIGKILL)


_FULL = (errno.ENOSPC, errno.EDQUOT)
_NEARLY_FULL = 1 << 20  # bytes left below which a failed command is blamed on the disk


def _raise_if_full(cwd: Path, step: str, *, force: bool = False) -> None:
    try:
        st = os.statvfs(cwd)
    except OSError:
        return
    free = st.f_bavail * st.f_frsize
    if force or free < _NEARLY_FULL or (st.f_files > 0 and st.f_favail == 0):
        raise EnvironmentProblem(
            f"the filesystem of the work dir {cwd} is full ({free} bytes free); the "
            "command failed for lack of space", step=step,
            hint="free space there (`plan cache gc --max-size ...`) or point --cache-dir "
            "(CROSSPLAN_CACHE_DIR) at a larger disk",
        )


# -- the command's life is bound to ours ---------------------------------------------------
_PR_SET_PDEATHSIG = 1
_GROUPS: set[int] = set()  # process groups of the commands running now (for SIGINT)
_GROUPS_LOCK = threading.RLock()  # re-entrant: stop_commands() may run in a signal handler
_STOPPING = threading.Event()


def _libc_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return fn


_PRCTL = _libc_prctl()


def _die_with(parent: int) -> Callable[[], None]:
    """The child's preexec: SIGKILL when the parent dies (resolved before fork: nothing is
    loaded or allocated in the child beyond the call); if it is already gone, exit."""
    prctl = _PRCTL

    def preexec() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(137)

    return preexec


def _forward_interrupts() -> None:
    """Commands run in their own process group, out of reach of a terminal's Ctrl-C: stop
    them (stop_commands), then call the previous handler (KeyboardInterrupt by default)."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN or getattr(previous, "_crossplan", False):
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        stop_commands()
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    on_sigint._crossplan = True  # type: ignore[attr-defined]
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGINT, on_sigint)


_forward_interrupts()


@contextlib.contextmanager
def follow(log: Path, on_line: Callable[[str], None], *, every: float = 0.2) -> Iterator[None]:
    """While the block runs, hand each complete line appended to ``log`` to ``on_line`` (from
    a thread polling every ``every`` s); the rest is handed over when the block ends."""
    done = threading.Event()

    def tail() -> None:
        pos, pending = 0, b""
        while True:
            last = done.wait(every)
            try:
                with open(log, "rb") as f:
                    f.seek(pos)
                    chunk = f.read()
            except OSError:
                chunk = b""
            pos += len(chunk)
            *lines, pending = (pending + chunk).split(b"\n")
            if last and pending:
                lines, pending = [*lines, pending], b""
            for line in lines:
                with contextlib.suppress(Exception):  # a renderer's bug must not stop a build
                    on_line(line.decode(errors="replace").rstrip("\r"))
            if last:
                return

    thread = threading.Thread(target=tail, name=f"follow {log.name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(5)


def log_tail(log: Path, lines: int = 20) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


