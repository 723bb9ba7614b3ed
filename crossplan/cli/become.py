"""A daemon's process for one command becoming its caller (cli/daemon.py): what it declines
(other interpreter options, limits it cannot take), then the caller's limits, descriptors,
directory, umask, environment and stdio, and `plan` run in it."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any

from crossplan.cli import client
from crossplan.errors import EXIT_ENVIRONMENT

__all__ = ["declined", "run", "take_limits"]


def declined(request: dict[str, Any]) -> str | None:
    """Why this process cannot run the command as the caller's shell would (the caller's
    interpreter options differ from the daemon's, or a limit cannot be taken); None when it
    can, its limits then the caller's."""
    theirs, ours = request.get("options") or [], client.interpreter_options()
    if theirs != ours:
        return (f"python options {' '.join(theirs) or '(none)'}, the daemon's "
                f"{' '.join(ours) or '(none)'}")
    return take_limits(request.get("limits") or {})


def take_limits(limits: dict[str, list[int]]) -> str | None:
    """Set the caller's resource limits on this process (its children, the build's
    processes, inherit them); why not, when one cannot be: a hard limit above the daemon's
    (only a privileged process raises it), or a memory limit (-v, -d) other than the
    daemon's (this process is a fork of a large one: a limit a fresh `plan` starts under
    could already be exceeded here)."""
    import resource

    for name, (soft, hard) in sorted(limits.items()):
        res = getattr(resource, name, None)
        if res is None or name not in client.LIMITS:
            continue
        now = resource.getrlimit(res)
        if (soft, hard) == now:
            continue
        if name in ("RLIMIT_AS", "RLIMIT_DATA"):
            return f"its memory limit {name} differs: {_limit(soft)}/{_limit(hard)}"
        try:
            resource.setrlimit(res, (soft, hard))
        except (ValueError, OSError):
            return (f"{name} {_limit(soft)}/{_limit(hard)} is above the daemon's hard limit "
                    f"{_limit(now[1])}")
    return None


def _limit(value: int) -> str:
    import resource

    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


def run(request: dict[str, Any], fds: list[int]) -> int:
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    try:
        os.chdir(request["cwd"])
    except OSError as exc:
        os.write(2, f"error: cannot enter the working directory {request['cwd']}: "
                    f"{exc.strerror}\n".encode())
        return EXIT_ENVIRONMENT
    os.umask(int(request["umask"]))
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])
    _reopen_stdio(unbuffered=bool(request.get("unbuffered")))
    _reset_process_state()
    from crossplan.cli import main

    try:
        main(served=True)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt:
        code = 130
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    return code


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _reopen_stdio(*, unbuffered: bool = False) -> None:
    """sys.stdin/stdout/stderr on the caller's descriptors, as Python opens them at start:
    stdout line-buffered on a terminal, stderr always, both written through with the
    caller's -u (PYTHONUNBUFFERED); the encoding from PYTHONIOENCODING, else UTF-8 (what
    these machines' locales give)."""
    spec = os.environ.get("PYTHONIOENCODING", "")
    encoding, _, errors = spec.partition(":")
    enc = encoding or "utf-8"
    sys.stdin = open(0, encoding=enc, errors=errors or "strict", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding=enc, errors=errors or "strict",  # noqa: SIM115
                      closefd=False, buffering=1 if os.isatty(1) else -1)
    sys.stderr = open(2, "w", encoding=enc, errors="backslashreplace",  # noqa: SIM115
                      closefd=False, buffering=1)
    if unbuffered:
        for stream in (sys.stdout, sys.stderr):
            stream.reconfigure(write_through=True)


def _reset_process_state() -> None:
    """What modules captured when the daemon imported them and must be the caller's."""
    import tempfile

    from crossplan.cli import common, noop

    tempfile.tempdir = None  # from TMPDIR, on first use
    noop.STARTED_NS = time.time_ns()
    noop.STARTED_ENV = dict(os.environ)
    common.reset_consoles()
