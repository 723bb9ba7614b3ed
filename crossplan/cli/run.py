"""`plan run`: build the plan showing its progress on stderr (cli/progress.py: a live view
on a terminal, timestamped lines when piped), then print the result table (or JSON).
SIGINT/SIGTERM stop the running steps: "interrupted", exit 130."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from crossplan import api
from crossplan.cli.common import (
    CacheDir,
    FileOpt,
    JsonOpt,
    ModeOpt,
    PlatformOpt,
    RemoteOpt,
    err,
    handles_errors,
    out,
    plan_and_rest,
)
from crossplan.cli.progress import ProgressOpt, progress_for
from crossplan.errors import RecipeError

if TYPE_CHECKING:
    from crossplan.executors.result import StepResult
    from crossplan.planner.plan import Plan

__all__ = ["VerboseOpt", "register"]

VerboseOpt = Annotated[bool, typer.Option(
    "--verbose", "-v", help="stream the steps' log lines to stderr, prefixed with the node")]


def register(app: typer.Typer) -> None:
    app.command()(run)


def run(
    args: Annotated[list[str] | None, typer.Argument(help="[PLAN] [STEP...]")] = None,
    plan_file: FileOpt = None,
    platform: PlatformOpt = None,
    as_json: JsonOpt = False,
    export: Annotated[Path | None, typer.Option(
        help="copy outputs to DIR/<step>/<platform>/")] = None,
    output: Annotated[str | None, typer.Option(help="oci:DIR or oci-archive:FILE.tar")] = None,
    push: Annotated[bool, typer.Option(help="push images to their tags")] = False,
    smoke: Annotated[bool, typer.Option(help="run each step's smoke command")] = False,
    check: Annotated[bool, typer.Option(
        "--check", help="rebuild what the store holds and compare the outputs byte for byte "
        "(exit 1 on any difference); stores nothing")] = False,
    cache_dir: CacheDir = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="parallel steps")] = None,
    keep_going: Annotated[bool, typer.Option("--keep-going", "-k")] = False,
    cache_remote: RemoteOpt = None,
    cache_mode: ModeOpt = None,
    affected: Annotated[bool, typer.Option(
        "--affected", help="only the nodes `plan affected` lists (and what they need)")] = False,
    since: Annotated[str | None, typer.Option(
        help="with --affected: compare with this git revision (default: the last run)")] = None,
    progress: ProgressOpt = "auto",
    verbose: VerboseOpt = False,
    sign_key: Annotated[Path | None, typer.Option(
        "--sign-key", help="cosign private key (password: COSIGN_PASSWORD) signing the "
        "published images and their attestations (default: [sign] key)")] = None,
    offline: Annotated[bool, typer.Option(
        "--offline", envvar="CROSSPLAN_OFFLINE",
        help="no network at all: no remote cache; --push only confirms tags this store "
        "already pushed; whatever needs a registry fails (exit 3)")] = False,
    locked: Annotated[bool, typer.Option(
        "--locked", envvar="CROSSPLAN_LOCKED",
        help="use plan.lock and sysroots.lock as they are: anything they do not pin is an "
        "error (exit 2), nothing is resolved or written (for CI)")] = False,
    executor: Annotated[str | None, typer.Option(
        "--executor", help="local | remote: run command steps here or on the REAPI cluster "
        "of [execution] remote (default: CROSSPLAN_EXECUTOR, then [execution] executor)",
    )] = None,
) -> None:
    """Build every step (or the named ones: ids like member:step, or globs) for every
    target platform."""
    with handles_errors(as_json), progress_for(progress, as_json=as_json, console=err) as shown:
        plan_path, targets = plan_and_rest(args, plan_file)
        if since is not None and not affected:
            raise RecipeError("--since needs --affected", hint="plan run --affected --since REV")
        shown.begin("planning", "probing toolchains, hashing inputs")
        recipe = api.load(plan_path)
        from crossplan.images.offline import forced

        with forced(offline):
            p = api.plan(recipe, platform, cache_dir=cache_dir, locked=locked)
        shown.total = _total(p, targets, affected)
        shown.end("planning", f"{len(p.nodes)} node(s) planned")
        opts = api.RunOptions(
            cache_dir=cache_dir, jobs=jobs, keep_going=keep_going, export=export,
            output=output, push=push, smoke=smoke, targets=targets, check=check,
            cache_remote=cache_remote, cache_mode=cache_mode, affected=affected, since=since,
            phases=True, stream_logs=verbose, sign_key=sign_key, offline=offline,
            executor=executor,
        )
        result = api.run(p, opts, on_event=shown.event)
    shown_json = result.as_json() if as_json else None
    if shown_json is not None:
        print(json.dumps(shown_json, indent=2))
    else:
        with out.capture() as captured:
            _print_result(result)
        out.file.write(captured.get())
    from crossplan.cli.noop_record import remember_noop

    remember_noop(p, result, opts, json_out=shown_json,
                  text_out=None if shown_json is not None else captured.get())
    if not result.ok:
        for s in result.steps:
            if s.status == "failed" and s.error:
                err.print(f"[bold red]failed:[/] {escape(s.error)}", highlight=False,
                          soft_wrap=True)
        raise typer.Exit(1)


def _total(p: Plan, targets: list[str], affected: bool) -> int | None:
    """How many nodes the run has (unknown with --affected until it runs)."""
    if affected:
        return None
    return len(p.subplan(p.select(targets)).nodes) if targets else len(p.nodes)


TABLE_ROWS = 50  # a bigger run lists what did not come from the store, then summarises


def _rows(result: api.RunResult) -> tuple[list[StepResult], int]:
    """The table's rows and how many are left out: every node of a small run; above
    TABLE_ROWS nodes, those not ``cached`` (the first TABLE_ROWS of them)."""
    steps = list(result.steps)
    if len(steps) <= TABLE_ROWS:
        return steps, 0
    shown = [s for s in steps if s.status != "cached"][:TABLE_ROWS]
    return shown, len(steps) - len(shown)


def _print_result(result: api.RunResult) -> None:
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    for col in ("step", "platform", "status", "seconds", "key"):
        table.add_column(col)
    colors = {"built": "green", "cached": "cyan", "substituted": "blue", "checked": "green",
              "failed": "red", "skipped": "yellow"}
    rows, hidden = _rows(result)
    for s in rows:
        table.add_row(
            s.node.step, s.node.platform, f"[{colors[s.status]}]{s.status}[/]",
            f"{s.seconds:.2f}", (s.key or "")[:16],
        )
    if rows:
        out.print(table)
    if hidden:
        out.print(f"({hidden} more not listed; --json lists every node)", highlight=False)
    for img in result.images:
        out.print(f"image [bold]{img.step}[/]: index {img.index_digest}", soft_wrap=True)
        for plat, dig in img.manifests.items():
            out.print(f"  {plat}: {dig}", soft_wrap=True)
        for note in img.notes:
            out.print(f"  {escape(note)}", soft_wrap=True, highlight=False)
    counts = {k: len(result.by_status(k)) for k in colors}  # type: ignore[arg-type]
    summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "nothing to build"
    out.print(f"{summary} in {result.seconds:.2f}s")
