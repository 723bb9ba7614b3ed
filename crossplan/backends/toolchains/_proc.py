"""Injectable process runner and PATH lookup used to probe toolchains (tests pass fakes)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = ["SAFE_PATH", "Runner", "first_line", "probe_env", "run", "which"]

# The PATH probes and builds fall back to when the caller gives none.
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

Runner = Callable[[Sequence[str], Mapping[str, str] | None], str]
"""``runner(argv, env) -> stdout``; raises OSError or subprocess.SubprocessError on failure."""


def run(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """Run a short probe (``go version``, ``gcc --version``) and return its stdout."""
    done = subprocess.run(
        list(argv),
        env=dict(env) if env is not None else probe_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return done.stdout


def probe_env(environ: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """A minimal environment for probes: PATH and HOME from ``environ``, plus ``extra``."""
    src = os.environ if environ is None else environ
    env = {"PATH": src.get("PATH", SAFE_PATH), "LC_ALL": "C"}
    for key in ("HOME", "RUSTUP_HOME", "CARGO_HOME", "TMPDIR"):
        if key in src:
            env[key] = src[key]
    env.update(extra)
    return env


def which(name: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """``name`` resolved on ``environ["PATH"]`` (absolute, symlinks kept), or None."""
    path = (os.environ if environ is None else environ).get("PATH", SAFE_PATH)
    found = shutil.which(name, path=path)
    return Path(found).absolute() if found else None


def first_line(text: str) -> str:
    """The first non-empty line, stripped."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""
