"""The `plan` command: builds the Typer app from the command modules; main() runs it."""

from __future__ import annotations

import sys

import typer

from crossplan.cli import bench, buildx, cache, dev, inspect, release, run, toolchains
from crossplan.cli.common import err
from crossplan.errors import CrossplanError

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="crossplan: cross-compile multi-arch images with Nix-style caching.\n\n"
    "Exit codes: 0 ok, 1 a step failed, 2 bad recipe or usage, 3 environment problem.",
)
# The order of registration is the order of `plan --help` (commands, then groups).
run.register(app)
dev.register(app)
inspect.register(app)
cache.register(app)
buildx.register(app)
release.register(app)
toolchains.register(app)
bench.register(app)


def main() -> None:
    try:
        app()
    except CrossplanError as exc:  # pragma: no cover - commands catch their own
        err.print(f"error: {exc.render()}")
        sys.exit(exc.exit_code)
