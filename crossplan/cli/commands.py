"""The `plan` command's one definition: the Typer app built from the command modules."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from crossplan.cli import (
    bench,
    buildx,
    cache,
    dev,
    inspect,
    lock,
    release,
    run,
    toolchains,
    version_text,
)
from crossplan.cli.common import JsonOpt, err
from crossplan.errors import CrossplanError

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="crossplan: cross-compile multi-arch images with Nix-style caching.\n\n"
    "Exit codes: 0 ok, 1 a step failed, 2 bad recipe or usage, 3 environment problem.",
)


def _show_version(value: bool) -> None:
    if value:
        print(version_text())
        raise typer.Exit(0)


@app.callback()
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


# The order of registration is the order of `plan --help` (commands, then groups).
run.register(app)
dev.register(app)
inspect.register(app)
cache.register(app)
buildx.register(app)
release.register(app)
lock.register(app)
toolchains.register(app)
bench.register(app)
app.command("version")(version_cmd)


def main() -> None:
    try:
        app()
    except CrossplanError as exc:  # pragma: no cover - commands catch their own
        err.print(f"error: {exc.render()}")
        sys.exit(exc.exit_code)
