"""`plan graph`, `plan explain`, `plan affected`: look at a plan without building it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from crossplan import api
from crossplan.cli.common import (
    CacheDir,
    JsonOpt,
    ModeOpt,
    PlanArg,
    PlatformOpt,
    RemoteOpt,
    fail,
    handles_errors,
    out,
    warn,
)
from crossplan.cli.render import render_graph
from crossplan.errors import CrossplanError

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command()(graph)
    app.command()(explain)
    app.command()(affected)


def graph(
    plan_file: PlanArg = Path("plan.toml"),
    fmt: Annotated[str, typer.Option("--format", help="text | dot | mermaid | json")] = "text",
    platform: PlatformOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the DAG of (step, platform) nodes."""
    if as_json:
        fmt = "json"
    if fmt not in ("text", "dot", "mermaid", "json"):
        fail(CrossplanError(f"unknown format '{fmt}'", hint="use text, dot, mermaid or json"),
             False)
    with handles_errors(as_json):
        p = api.plan(api.load(plan_file), platform, with_toolchains=False)
    print(render_graph(p, fmt))


def explain(
    step: str,
    plan_file: PlanArg = Path("plan.toml"),
    platform: PlatformOpt = None,
    cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
    cache_remote: RemoteOpt = None,
    cache_mode: ModeOpt = None,
) -> None:
    """What a step's key is made of, and why it would rebuild."""
    with handles_errors(as_json):
        p = api.plan(api.load(plan_file), None, cache_dir=cache_dir)
        ex = api.explain(
            p, step, platform, cache_dir=cache_dir, cache_remote=cache_remote,
            cache_mode=cache_mode, on_warning=warn,
        )
    if as_json:
        print(json.dumps(ex.as_json(), indent=2))
        return
    out.print(f"[bold]{ex.node}[/]  key {ex.key or '(unknown until its deps are built)'}")
    out.print(f"  cached: {'yes' if ex.cached else 'no'}")
    if ex.remote is not None:
        out.print(f"  in the remote cache: {'yes' if ex.remote else 'no'}")
    for k, v in ex.components.items():
        out.print(f"  {k}: {json.dumps(v)[:120]}", highlight=False)
    out.print(f"  input files: {len(ex.inputs)}")
    for d, outs in ex.deps.items():
        out.print(f"  dep {d}: {'not built' if outs is None else f'{len(outs)} output(s)'}")
    out.print("[bold]since the last recorded run:[/]")
    for c in ex.changes:
        out.print(f"  - {escape(c)}", highlight=False)


def affected(
    plan_file: PlanArg = Path("plan.toml"),
    since: Annotated[str | None, typer.Option(
        help="git revision to compare with (default: the last recorded run in the store)")]
    = None,
    platform: PlatformOpt = None,
    cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
) -> None:
    """List the (step, platform) nodes whose input keys differ from those at git revision
    --since (or from the last recorded run), with what changed for each."""
    with handles_errors(as_json):
        p = api.plan(api.load(plan_file), platform, cache_dir=cache_dir)
        found = api.affected(p, since, cache_dir=cache_dir)
    if as_json:
        print(json.dumps(found.as_json(), indent=2))
        return
    out.print(f"compared with {escape(found.baseline)}: {len(found.nodes)} of {found.total} "
              "node(s) affected", highlight=False, soft_wrap=True)
    for a in found.nodes:
        out.print(f"[bold]{escape(str(a.node))}[/]", highlight=False, soft_wrap=True)
        for c in a.changes:
            out.print(f"  - {escape(c)}", highlight=False, soft_wrap=True)
    for name in found.removed:
        out.print(f"removed: {escape(name)}", highlight=False, soft_wrap=True)
