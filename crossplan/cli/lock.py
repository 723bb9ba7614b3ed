"""`plan lock`: resolve every base and toolchain image per platform into plan.lock and every
sysroot into sysroots.lock; with `--update`, re-resolve them and show what changed."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

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


def register(app: typer.Typer) -> None:
    app.command("lock")(lock_cmd)


def lock_cmd(
    plan_arg: PlanPos = None,
    plan_file: FileOpt = None,
    update: Annotated[bool, typer.Option(
        "--update", help="re-resolve every image (default: only those not locked yet) and "
        "show what changed")] = False,
    cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Pin every registry base and toolchain image to a manifest digest per platform in
    plan.lock (next to plan.toml), and every Debian sysroot's packages per architecture in
    sysroots.lock. Runs then use the locked digests, and fail naming base and platform when
    a platform a step needs is not there; `plan run --locked` resolves nothing."""
    with handles_errors(as_json):
        recipe = api.load(plan_path(plan_arg, plan_file))
        result = api.lock(recipe, update=update, cache_dir=cache_dir)
    if as_json:
        print(json.dumps(result.as_json(), indent=2))
        return
    shown = [c for c in result.changes if c.change != "unchanged" or c.platform is None]
    for c in shown:
        what = c.image + (f" {c.platform}" if c.platform else "")
        if c.change == "unchanged":
            out.print(f"  {escape(what)}: {c.new}", highlight=False, soft_wrap=True)
        elif c.change == "changed":
            out.print(f"[yellow]changed[/] {escape(what)}: {c.old} -> {c.new}",
                      highlight=False, soft_wrap=True)
        else:
            color = "green" if c.change == "added" else "red"
            out.print(f"[{color}]{c.change}[/] {escape(what)}: {c.new or c.old}",
                      highlight=False, soft_wrap=True)
    changed = sum(1 for c in result.changes if c.change != "unchanged")
    out.print(f"{result.path}: " + ("written" if result.written else "up to date")
              + f" ({changed} change(s))", highlight=False, soft_wrap=True)
    for line in result.sysroots:
        out.print(f"sysroots.lock: {escape(line)}", highlight=False, soft_wrap=True)
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
