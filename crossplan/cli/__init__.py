"""The `plan` entry point: `--version` is answered before anything loads; a command goes to
the crossplan daemon when one runs (cli/client.py, cli/daemon.py); a memoised no-op
`plan run` is answered (here or in the daemon's fork) before Typer or the planner load;
everything else goes to the Typer app (cli/commands.py)."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing is not imported: `plan --version` costs about one `python`
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    import typer

__all__ = ["app", "main", "version_text"]

# The exact argv the eager `--version/-V` option of the app answers with nothing else to do.
_VERSION_ARGV = (["--version"], ["-V"])


def version_text() -> str:
    from crossplan import __version__

    return f"crossplan {__version__}"


def main(served: bool = False) -> None:
    """`plan`: in a running daemon's fork when there is one (cli/client.py), else here.
    ``served``: this process is that fork (cli/daemon.py)."""
    argv = sys.argv[1:]
    if argv in _VERSION_ARGV:  # what the app's eager --version prints (test_startup)
        print(version_text())
        return
    if not served and argv[:1] != ["daemon"]:
        from crossplan.cli import client

        code = client.delegate(argv)  # the daemon's fork answers from the no-op memo too
        if code is not None:
            client.exit_now(code)
    if argv[:1] == ["run"]:
        from crossplan.cli import noop

        if noop.replay(argv):  # nothing changed since a run that found everything cached
            return
        noop.ARGV = argv  # a run that finds everything cached may be memoised for next time
    run_app = _imported(argv[:1] == ["run"])
    run_app()


def _imported(planned_run: bool) -> Callable[[], None]:
    """The app's entry, its modules imported with the cyclic GC off (and, for `plan run`,
    what every planned run imports: the planner, probes, executors). Imports allocate a few
    hundred thousand long-lived objects and the collections they trigger find no garbage
    (~0.1-0.2 s of a planned run's start here); what they made is then frozen out of later
    collections (gc.freeze) and the GC is back on for the command itself."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        from crossplan.cli.commands import main as run_app

        if planned_run:
            import crossplan.api.running  # noqa: F401
    finally:
        if enabled:
            gc.freeze()
            gc.enable()
    return run_app


def __getattr__(name: str) -> Any:
    if name == "app":  # the Typer app, built on first use
        from crossplan.cli.commands import app

        return app
    raise AttributeError(f"module 'crossplan.cli' has no attribute {name!r}")


if TYPE_CHECKING:
    app: typer.Typer
