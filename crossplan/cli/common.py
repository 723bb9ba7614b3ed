"""Shared by every command: the consoles, option types, fail() and the error handler."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import TracebackType
from typing import Annotated, Literal, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from crossplan.errors import CrossplanError, RecipeError

__all__ = [
    "CacheDir",
    "FileOpt",
    "JsonOpt",
    "ModeOpt",
    "PlanArg",
    "PlanPos",
    "PlatformOpt",
    "RemoteOpt",
    "err",
    "fail",
    "handles_errors",
    "out",
    "plan_and_rest",
    "plan_path",
    "reset_consoles",
    "warn",
]


def _console(stderr: bool) -> Console:
    """Rich sizes output to 80 columns when not on a terminal; piped tables (logs, CI) would
    then be cut with ellipses. Off a terminal, and unless COLUMNS says otherwise: 200."""
    stream = sys.stderr if stderr else sys.stdout
    tty = getattr(stream, "isatty", lambda: False)()
    wide = None if tty or os.environ.get("COLUMNS") else 200
    return Console(stderr=stderr, width=wide)


err = _console(stderr=True)
out = _console(stderr=False)


def reset_consoles() -> None:
    """``err`` and ``out`` made again, in place, for the process's streams and environment
    as they are now (a daemon's fork that became a caller: cli/daemon.py)."""
    for console, stderr in ((err, True), (out, False)):
        fresh = _console(stderr)
        console.__dict__.clear()
        console.__dict__.update(fresh.__dict__)

PlanArg = Annotated[
    Path, typer.Option("--file", "-f", help="plan.toml or its directory")
]
# How every command is given its plan (one convention): a positional PLAN (plan.toml or its
# directory) or -f/--file PLAN; neither: the nearest plan.toml here or in a parent directory.
_PLAN_HELP = ("plan.toml or its directory (default: the nearest plan.toml in this directory "
              "or a parent)")
FileOpt = Annotated[Path | None, typer.Option("--file", "-f", help=_PLAN_HELP)]
PlanPos = Annotated[Path | None, typer.Argument(help=_PLAN_HELP, show_default=False)]
CacheDir = Annotated[
    Path | None,
    typer.Option("--cache-dir", envvar="CROSSPLAN_CACHE_DIR", help="store directory"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="one JSON object on stdout")]
PlatformOpt = Annotated[
    str | None, typer.Option("--platform", help="comma-separated target platforms")
]
RemoteOpt = Annotated[str | None, typer.Option(
    "--cache-remote", help="remote cache REGISTRY/REPO (or CROSSPLAN_CACHE_REMOTE, cache.remote)"
)]
ModeOpt = Annotated[str | None, typer.Option(
    "--cache-mode", help="readwrite | read | off (or CROSSPLAN_CACHE_MODE, cache.mode)"
)]


def _is_plan(text: str) -> bool:
    p = Path(text)
    try:
        return p.is_file() or (p.is_dir() and (p / "plan.toml").is_file())
    except OSError:
        return False


def plan_path(positional: Path | str | None = None, file: Path | None = None) -> Path:
    """The plan a command reads: the positional PLAN or ``-f/--file`` (both: they must agree),
    else the nearest plan.toml in the working directory or a parent (as git finds .git)."""
    from crossplan.recipes import find_recipe

    if positional is not None and file is not None and Path(positional) != file:
        raise RecipeError(
            f"two plans given: {positional} and --file {file}",
            hint="give the plan once: `plan CMD PLAN ...` or `plan CMD -f PLAN ...`",
        )
    given = file if file is not None else positional
    if given is not None:
        return Path(given)
    return find_recipe(Path.cwd())


def plan_and_rest(args: list[str] | None, file: Path | None = None) -> tuple[Path, list[str]]:
    """``[PLAN] [ARG...]``: the first argument is the plan when it is a plan.toml or a
    directory holding one (as `plan run` reads it), else every argument is the command's."""
    rest = list(args or [])
    if rest and _is_plan(rest[0]):
        return plan_path(rest[0], file), rest[1:]
    return plan_path(None, file), rest


def fail(exc: CrossplanError, as_json: bool) -> NoReturn:
    """Print the error on stderr (and, with --json, as JSON on stdout); exit with its code."""
    err.print(f"[bold red]error:[/] {escape(exc.render())}", highlight=False, soft_wrap=True)
    if as_json:
        print(json.dumps({"ok": False, "error": exc.render(), "exit_code": exc.exit_code}))
    raise typer.Exit(exc.exit_code)


class handles_errors:
    """``with handles_errors(as_json): ...``: a CrossplanError raised in the block goes to
    fail() (error on stderr, JSON with --json, the error's exit code)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if isinstance(exc, CrossplanError):
            fail(exc, self.as_json)
        return False


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)
