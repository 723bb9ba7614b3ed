"""The `plan` command's one definition: the Typer app built from the command modules."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from crossplan.cli import dev, run, version_text
from crossplan.cli.common import JsonOpt, err
from crossplan.errors import CrossplanError

__all__ = ["app", "click_command", "main", "run_app"]


def _typer() -> typer.Typer:
    return typer.Typer(
        add_completion=False,
        pretty_exceptions_enable=False,
        no_args_is_help=True,
        help="crossplan: cross-compile multi-arch images with Nix-style caching.\n\n"
        "Exit codes: 0 ok, 1 a step failed, 2 bad recipe or usage, 3 environment problem.",
    )


# `plan run ...` (the command run after every edit) is parsed by an app holding only the
# commands run.py and dev.py register: Typer builds a Click command from every registered
# function's signature on each start (~0.1 s for all of them), and the other command
# modules are not imported. `app`, with every command, is built on first use
# (tests/unit/test_startup.py checks `run` is the same command in both).
run_app = _typer()
_full: list[typer.Typer] = []


def _show_version(value: bool) -> None:
    if value:
        print(version_text())
        raise typer.Exit(0)


def _main(
    version: Annotated[bool, typer.Option(
        "--version", "-V", callback=_show_version, is_eager=True,
        help="print the version and exit")] = False,
) -> None:
    """crossplan: cross-compile multi-arch images with Nix-style caching.

    Exit codes: 0 ok, 1 a step failed, 2 bad recipe or usage, 3 environment problem."""


def version_cmd(as_json: JsonOpt = False) -> None:
    """Print crossplan's version (and Python's, with --json)."""
    import platform

    from crossplan import __version__

    if as_json:
        print(json.dumps({"version": __version__, "python": platform.python_version()}))
    else:
        print(version_text())


def _base(app: typer.Typer) -> typer.Typer:
    app.callback()(_main)
    run.register(app)
    dev.register(app)
    return app


_base(run_app)


def _app() -> typer.Typer:
    """The app with every command (built once)."""
    if _full:
        return _full[0]
    from crossplan.cli import (
        bench,
        buildx,
        cache,
        daemon_cmds,
        inspect,
        lock,
        release,
        toolchains,
    )

    app = _base(_typer())
    # The order of registration is the order of `plan --help` (commands, then groups).
    inspect.register(app)
    cache.register(app)
    buildx.register(app)
    release.register(app)
    lock.register(app)
    toolchains.register(app)
    bench.register(app)
    daemon_cmds.register(app)
    app.command("version")(version_cmd)
    _full.append(app)
    return app


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        return _app()
    raise AttributeError(f"module 'crossplan.cli.commands' has no attribute {name!r}")


if TYPE_CHECKING:
    app: typer.Typer


_clicked: dict[bool, Callable[..., Any]] = {}


def click_command(full: bool) -> Callable[..., Any]:
    """The Click command Typer makes of the app (``full``) or of `run`'s app: made once per
    process (a daemon makes both before it forks: cli/daemon.py), as calling the Typer app
    would make it again on every call."""
    if full not in _clicked:
        _clicked[full] = typer.main.get_command(_app() if full else run_app)
    return _clicked[full]


def main() -> None:
    try:
        click_command(sys.argv[1:2] != ["run"])()
    except CrossplanError as exc:  # pragma: no cover - commands catch their own
        err.print(f"error: {exc.render()}")
        sys.exit(exc.exit_code)
