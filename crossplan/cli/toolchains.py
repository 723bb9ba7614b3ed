"""`plan toolchains` (list what is found) and `plan toolchains install` (pinned ones)."""

from __future__ import annotations

import json

import typer

from crossplan import api
from crossplan.cli.common import (
    CacheDir,
    FileOpt,
    JsonOpt,
    PlanPos,
    err,
    handles_errors,
    out,
    plan_path,
)

__all__ = ["register"]

toolchains_app = typer.Typer(
    help="Toolchains found on this machine, and managed (pinned) ones to install.",
    invoke_without_command=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(toolchains_app, name="toolchains")


@toolchains_app.callback()
def toolchains_list(
    ctx: typer.Context, cache_dir: CacheDir = None, as_json: JsonOpt = False
) -> None:
    """List Go, Rust and C toolchains: versions, where they come from, target platforms."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    found = api.toolchains(cache_dir=cache_dir)
    if as_json:
        print(json.dumps([t.to_json() for t in found], indent=2))
        return
    table = Table(show_header=True, header_style="bold")
    for col in ("kind", "name", "version", "source", "targets"):
        table.add_column(col)
    for t in found:
        table.add_row(t.kind, t.name, t.version, t.source, ", ".join(t.platforms))
    out.print(table)
    if not found:
        err.print("no toolchains found: pin them with [toolchains] go = \"1.27.3\", zig = "
                  "\"0.17.1\" and run `plan toolchains install`", highlight=False)


@toolchains_app.command("install")
def toolchains_install(
    plan_arg: PlanPos = None, plan_file: FileOpt = None, cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Download and verify the plan's pinned toolchains ([toolchains]) into the store."""
    with handles_errors(as_json):
        installed = api.install_toolchains(api.load(plan_path(plan_arg, plan_file)),
                                           cache_dir=cache_dir)
    if as_json:
        print(json.dumps({k: str(v) for k, v in installed.items()}, indent=2))
        return
    if not installed:
        out.print("nothing pinned in [toolchains]")
    for name, path in installed.items():
        out.print(f"{name}: {path}", highlight=False)
