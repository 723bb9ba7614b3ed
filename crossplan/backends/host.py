"""Run a step's commands on the build platform in its work dir, with a scrubbed environment."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from crossplan.errors import EnvironmentProblem
from crossplan.platforms import Platform

__all__ = ["PASS_THROUGH", "base_env", "log_tail", "run_commands"]

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
    code is returned (0 when all succeed). A missing program is an EnvironmentProblem."""
    with open(log, "ab") as out:
        for argv in commands:
            out.write(f"$ {' '.join(argv)}\n".encode())
            out.flush()
            started = time.monotonic()
            try:
                proc = subprocess.run(
                    list(argv), cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, check=False,
                )
            except FileNotFoundError:
                raise EnvironmentProblem(
                    f"program not found: {argv[0]}", step=step,
                    hint=f"install {argv[0]} or put it on PATH (PATH={env.get('PATH', '')})",
                ) from None
            out.write(f"# exit {proc.returncode} in {time.monotonic() - started:.2f}s\n".encode())
            if proc.returncode != 0:
                return proc.returncode
    return 0


def log_tail(log: Path, lines: int = 20) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


