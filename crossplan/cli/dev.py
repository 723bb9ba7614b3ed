"""The dev loop: `plan load` (one platform of an image into the local Docker engine) and
`plan run --watch` (rebuild on save, the build machine's platform first).

`--watch` is added to the `run` command registered by ``cli.run``: its callback is wrapped
(same parameters plus ``--watch``), so `plan run` without it is untouched.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from crossplan import api
from crossplan.cli.common import CacheDir, JsonOpt, err, handles_errors, out
from crossplan.errors import RecipeError

if TYPE_CHECKING:
    from crossplan.api.dev import Rebuild

__all__ = ["register"]

WatchOpt = Annotated[bool, typer.Option(
    "--watch", help="after the first build, rebuild on every saved change to the steps' src "
    "trees and plan.toml files (this machine's platform first), one line per rebuild; "
    "Ctrl-C stops (exit 130)")]


def register(app: typer.Typer) -> None:
    app.command("load")(load_cmd)
    for info in app.registered_commands:
        name = info.name or getattr(info.callback, "__name__", "")
        if name == "run" and info.callback is not None:
            info.callback = _with_watch(info.callback)


def _split(args: list[str]) -> tuple[Path | None, list[str]]:
    """``[PLAN] [STEP...]``: the first arg is the plan if it is a path to one."""
    if args:
        first = Path(args[0])
        if first.is_file() or (first.is_dir() and (first / "plan.toml").is_file()):
            return first, args[1:]
    return None, args


def load_cmd(
    args: Annotated[list[str] | None, typer.Argument(
        help="[PLAN] STEP: the image step (optional when the plan has one)")] = None,
    plan_file: Annotated[Path | None, typer.Option(
        "--file", "-f", help="plan.toml or its directory")] = None,
    platform: Annotated[str | None, typer.Option(
        "--platform", help="the platform to load (default: this machine's)")] = None,
    tag: Annotated[str | None, typer.Option(
        "--tag", help="name in the engine (default: the step's first tag, else "
        "crossplan/<project>-<step>:dev)")] = None,
    cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Build an image step (or find it in the store) and load one platform of it into the
    local Docker engine, so `docker run` starts it."""
    path, rest = _split(args or [])
    with handles_errors(as_json):
        if path is not None and plan_file is not None:
            raise RecipeError("two plans given", hint="pass PLAN or -f PLAN, not both")
        if len(rest) > 1:
            raise RecipeError(f"one image step at a time (got {', '.join(rest)})",
                              hint="plan load [PLAN] STEP --platform P")
        recipe = api.load(path or plan_file or Path("plan.toml"))

        def on_event(e: api.StepEvent) -> None:
            if e.kind == "warning":
                err.print(f"[yellow]warning:[/] {e.node}: {escape(e.message)}", highlight=False)

        loaded = api.load_image(recipe, rest[0] if rest else None, platform=platform, tag=tag,
                                cache_dir=cache_dir, on_event=on_event)
    if as_json:
        print(json.dumps(loaded.as_json(), indent=2))
        return
    img = loaded.image
    built = len(loaded.result.by_status("built"))
    how = f"built {built} node(s)" if built else "from the store"
    out.print(f"loaded [bold]{escape(img.ref)}[/] ({img.platform}, {img.manifest}; {how}, "
              f"{loaded.backend} backend)", highlight=False, soft_wrap=True)
    out.print(f"  docker run --rm --platform {img.platform} {escape(img.ref)}",
              highlight=False, soft_wrap=True)


def _with_watch(run_cb: Callable[..., Any]) -> Callable[..., Any]:
    """``run_cb`` with one more option, ``--watch``, that hands its arguments to _watch."""
    sig = inspect.signature(run_cb, eval_str=True)
    param = inspect.Parameter("watch", inspect.Parameter.KEYWORD_ONLY, default=False,
                              annotation=WatchOpt)
    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in sig.parameters.values()]

    @functools.wraps(run_cb)
    def run_or_watch(*, watch: bool = False, **kwargs: Any) -> Any:
        if not watch:
            return run_cb(**kwargs)
        return _watch(**kwargs)

    run_or_watch.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[*params, param])
    run_or_watch.__annotations__ = {
        **{p.name: p.annotation for p in params}, "watch": WatchOpt, "return": None}
    return run_or_watch


def _watch(**kw: Any) -> None:
    """`plan run --watch [PLAN] [STEP...]`."""
    path, targets = _split(list(kw.get("args") or []))
    as_json = bool(kw.get("as_json"))
    with handles_errors(as_json):
        for flag, name in (("check", "--check"), ("affected", "--affected"),
                           ("since", "--since")):
            if kw.get(flag):
                raise RecipeError(f"{name} does not go with --watch",
                                  hint="plan run --watch [PLAN] [STEP...]")
        opts = api.RunOptions(
            cache_dir=kw.get("cache_dir"), jobs=kw.get("jobs"),
            keep_going=bool(kw.get("keep_going")), export=kw.get("export"),
            output=kw.get("output"), push=bool(kw.get("push")), smoke=bool(kw.get("smoke")),
            targets=targets, cache_remote=kw.get("cache_remote"),
            cache_mode=kw.get("cache_mode"),
        )
        output = str(opts.output or "")
        ignore = [output.split(":", 1)[1]] if ":" in output else []

        def on_event(e: api.StepEvent) -> None:
            if e.kind == "warning":
                err.print(f"[yellow]warning:[/] {e.node}: {escape(e.message)}", highlight=False)

        def on_rebuild(r: Rebuild) -> None:
            if as_json:
                print(json.dumps(r.as_json()), flush=True)
            else:
                style = "green" if r.ok else "red"
                out.print(f"[{style}]{escape(r.summary())}[/]", highlight=False, soft_wrap=True)
            if r.error is not None:
                err.print(f"[bold red]error:[/] {escape(r.error.render())}", highlight=False,
                          soft_wrap=True)
            elif r.result is not None:
                for s in r.result.steps:
                    if s.status == "failed" and s.error:
                        err.print(f"[bold red]failed:[/] {escape(s.error)}", highlight=False,
                                  soft_wrap=True)
            if r.iteration == 0:
                err.print("watching for changes (Ctrl-C stops)", highlight=False)

        try:
            api.watch(path or Path("plan.toml"), _watchfiles, opts, platforms=kw.get("platform"),
                      on_rebuild=on_rebuild, on_event=on_event, ignore=ignore)
        except KeyboardInterrupt:
            err.print("interrupted", highlight=False)
            raise typer.Exit(130) from None


def _watchfiles(paths: tuple[Path, ...]) -> Iterator[Collection[Path]]:
    """Batches of changed paths from ``watchfiles`` (editor swap files, .git and the like
    filtered out); raises KeyboardInterrupt on Ctrl-C."""
    from watchfiles import DefaultFilter, watch

    existing = [p for p in paths if p.exists()]
    for changes in watch(*existing, watch_filter=DefaultFilter(), raise_interrupt=True):
        yield {Path(p) for _, p in changes}
