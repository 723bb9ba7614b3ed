"""`plan graph`, `plan explain`, `plan affected`: look at a plan without building it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from crossplan import api
from crossplan.cli.common import (
    CacheDir,
    FileOpt,
    JsonOpt,
    ModeOpt,
    PlanPos,
    PlatformOpt,
    RemoteOpt,
    fail,
    handles_errors,
    out,
    plan_and_rest,
    plan_path,
    warn,
)
from crossplan.cli.render import render_graph
from crossplan.errors import CrossplanError, RecipeError

if TYPE_CHECKING:
    from crossplan.inspect.explain import Explanation
    from crossplan.planner.plan import Plan

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command()(graph)
    app.command()(explain)
    app.command()(affected)


def graph(
    plan_arg: PlanPos = None,
    plan_file: FileOpt = None,
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
        p = api.plan(api.load(plan_path(plan_arg, plan_file)), platform, with_toolchains=False)
    print(render_graph(p, fmt))


def explain(
    args: Annotated[list[str], typer.Argument(help="[PLAN] STEP", show_default=False)],
    plan_file: FileOpt = None,
    platform: PlatformOpt = None,
    cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
    cache_remote: RemoteOpt = None,
    cache_mode: ModeOpt = None,
) -> None:
    """What a step's key is made of, and why it would rebuild: every platform of the step
    unless --platform names one."""
    with handles_errors(as_json):
        plan_file, rest = plan_and_rest(args, plan_file)
        if len(rest) != 1:
            raise RecipeError("plan explain takes one STEP", hint="plan explain [PLAN] STEP")
        step = rest[0]
        p = api.plan(api.load(plan_file), None, cache_dir=cache_dir)
        plats = _platforms_of(p, step, platform)
        exs = [api.explain(
            p, step, plat, cache_dir=cache_dir, cache_remote=cache_remote,
            cache_mode=cache_mode, on_warning=warn,
        ) for plat in plats]
    if as_json:  # one platform: the object as before; several: a list of them
        print(json.dumps(exs[0].as_json() if len(exs) == 1 else
                         {"explanations": [e.as_json() for e in exs]}, indent=2))
        return
    for ex in exs:
        _print_explanation(ex)


def _platforms_of(p: Plan, step: str, platform: str | None) -> list[str | None]:
    """--platform as given; else every platform of the step (one node when it spans them)."""
    if platform is not None:
        return [platform]
    nodes = sorted(n.platform for n in p.nodes if n.step == step)
    return list(nodes) if len(nodes) > 1 else [None]


def _print_explanation(ex: Explanation) -> None:
    """Values are shown whole: long ones wrap (never cut)."""
    out.print(f"[bold]{escape(str(ex.node))}[/]  key "
              f"{ex.key or '(unknown until its deps are built)'}", soft_wrap=True)
    out.print(f"  cached: {'yes' if ex.cached else 'no'}")
    if ex.remote is not None:
        out.print(f"  in the remote cache: {'yes' if ex.remote else 'no'}")
    for k, v in ex.components.items():
        out.print(f"  {escape(k)}: {escape(json.dumps(v))}", highlight=False, overflow="fold")
    out.print(f"  input files: {len(ex.inputs)}")
    for d, outs in ex.deps.items():
        out.print(f"  dep {escape(d)}: "
                  f"{'not built' if outs is None else f'{len(outs)} output(s)'}",
                  highlight=False, overflow="fold")
    out.print("[bold]since the last recorded run:[/]")
    for c in ex.changes:
        out.print(f"  - {escape(c)}", highlight=False, overflow="fold")


def affected(
    plan_arg: PlanPos = None,
    plan_file: FileOpt = None,
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
        p = api.plan(api.load(plan_path(plan_arg, plan_file)), platform, cache_dir=cache_dir)
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
