"""Release commands: `plan ci` (pipelines), `plan report` (image sizes), `plan tags prune`."""

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
    PlanArg,
    RemoteOpt,
    err,
    fail,
    handles_errors,
    out,
    plan_path,
)
from crossplan.errors import CrossplanError, RecipeError, StepFailed

if TYPE_CHECKING:
    from crossplan.recipes.models import Recipe
    from crossplan.release import ImageReport

__all__ = ["register"]

tags_app = typer.Typer(help="Maintain an image repository's tags.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("ci")(ci_cmd)
    app.command("publish-platform")(publish_platform)
    app.command("publish-index")(publish_index)
    app.command()(report)
    app.add_typer(tags_app, name="tags")


def ci_cmd(
    system: Annotated[str, typer.Argument(help="github | gitlab | jenkins")],
    plan_file: PlanArg = Path("plan.toml"),
    write: Annotated[bool, typer.Option(
        "--write", help="write .github/workflows/crossplan.yml, .gitlab-ci.yml or Jenkinsfile "
        "at the repository root (git rev-parse --show-toplevel; without git: next to "
        "plan.toml)")] = False,
    cache_remote: Annotated[str | None, typer.Option(
        "--cache-remote", help="remote cache REGISTRY/REPO (default: cache.remote, else "
        "<first image tag's repository>-plan-cache)")] = None,
    default_branch: Annotated[str, typer.Option(
        help="the branch that pushes (GitHub push trigger, Jenkins `when`)")] = "main",
    install: Annotated[str | None, typer.Option(
        help="pip requirement installing crossplan in the pipeline, e.g. \"crossplan @ "
        "git+https://...\" or crossplan==X (default: ./ when the repository is crossplan's "
        "own; required otherwise)")] = None,
    runners: Annotated[str, typer.Option(
        help="single: one amd64 runner cross-compiling every platform; native: one job per "
        "platform on a runner of its architecture, then one publishing the indexes")
    ] = "single",
    as_json: JsonOpt = False,
) -> None:
    """Generate a CI pipeline for the plan: installs crossplan and the toolchains it needs,
    logs into the registries, builds with the remote cache (read-only on pull requests),
    smoke-tests each platform and pushes on the default branch. Its commands run from the
    repository root."""
    from crossplan import ci

    with handles_errors(as_json):
        recipe = api.load(plan_file)
        location = ci.locate(recipe.file, ci.git_toplevel(recipe.root))
        opts = ci.CiOptions(default_branch=default_branch, cache_remote=cache_remote,
                            install=install, runners=runners)
        pipeline = ci.generate(system, recipe, opts, location)
        written = ci.write(pipeline) if write else None
    if not location.git:
        err.print(f"[yellow]warning:[/] {escape(str(location.root))} is not in a git "
                  "repository: paths are relative to the plan's directory"
                  + (", where the pipeline was written" if written else "")
                  + "; CI systems read it only at the repository root", highlight=False)
    if as_json:
        print(json.dumps({**pipeline.as_json(), "written": str(written) if written else None},
                         indent=2))
    elif written is not None:
        out.print(f"wrote {written}", highlight=False, soft_wrap=True)
    else:
        print(pipeline.text, end="")


def _plan_and_steps(args: list[str]) -> tuple[Path, list[str]]:
    """``[PLAN] [STEP...]`` as `plan run` reads it: the first arg is the plan if it is one."""
    if args:
        first = Path(args[0])
        if first.is_file() or (first.is_dir() and (first / "plan.toml").is_file()):
            return first, args[1:]
    return Path("plan.toml"), args


def publish_platform(
    args: Annotated[list[str] | None, typer.Argument(help="[PLAN] [STEP...]")] = None,
    platform: Annotated[str, typer.Option(help="the one platform this job built")] = "",
    digests: Annotated[Path, typer.Option(
        help="directory for the records `plan publish-index` reads")] = Path(
        ".crossplan/digests"),
    cache_dir: CacheDir = None,
    cache_remote: RemoteOpt = None,
    cache_mode: ModeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Native-runner fan-out, per platform: push this platform's images by digest (no tag)
    to their tags' repositories and record them in --digests (what `plan run --platform P`
    built: everything comes from the store or the remote cache)."""
    import tempfile

    from crossplan.backends.oci.reload import read_layout_index
    from crossplan.planner.graph import step_platforms
    from crossplan.planner.plan import target_platforms
    from crossplan.recipes.models import ImageStep
    from crossplan.release.merge import write_record
    from crossplan.release.merge_push import push_platform

    plan_path, steps = _plan_and_steps(args or [])
    written: list[dict[str, object]] = []
    with handles_errors(as_json):
        if not platform or "," in platform:
            raise RecipeError("publish-platform needs exactly one --platform",
                              hint="plan publish-platform PLAN --platform linux/arm64")
        recipe = api.load(plan_path)
        tagged = [sid for sid, s in recipe.steps.items() if isinstance(s, ImageStep) and s.tags]
        targets = steps or tagged
        p = api.plan(recipe, platform, cache_dir=cache_dir)
        with tempfile.TemporaryDirectory(prefix="crossplan-publish-") as tmp:
            opts = api.RunOptions(cache_dir=cache_dir, output=f"oci:{tmp}/image",
                                  targets=targets, cache_remote=cache_remote,
                                  cache_mode=cache_mode)
            result = api.run(p, opts)
            if not result.ok:
                failed = [s.error or str(s.node) for s in result.steps if s.status == "failed"]
                raise StepFailed("the build failed: " + "; ".join(failed))
            for img in result.images:
                step = recipe.steps[img.step]
                if not isinstance(step, ImageStep) or not step.tags or img.layout is None:
                    continue
                every = step_platforms(step, target_platforms(recipe, None))
                for rec in push_platform(read_layout_index(img.layout), step=img.step,
                                         tags=step.tags, arch_tags=step.arch_tags,
                                         platforms=every):
                    path = write_record(digests, rec)
                    written.append({"step": rec.step, "platform": str(rec.platform),
                                    "digest": rec.manifest.digest, "record": str(path)})
    if as_json:
        print(json.dumps({"ok": True, "records": written}, indent=2))
        return
    for w in written:
        out.print(f"{w['step']} {w['platform']}: {w['digest']} pushed by digest; "
                  f"recorded in {w['record']}", highlight=False, soft_wrap=True)


def publish_index(
    digests: Annotated[Path, typer.Argument(
        help="the records of `plan publish-platform` (every platform's, gathered)")] = Path(
        ".crossplan/digests"),
    as_json: JsonOpt = False,
) -> None:
    """Native-runner fan-out, last job: assemble each image step's multi-platform index from
    the per-platform records, push it where those manifests are, then its tags (and arch
    tags). Refuses when a platform is missing. Needs no plan and no toolchain."""
    from crossplan.release.merge import merge_records, read_records
    from crossplan.release.merge_push import publish_merged

    results = []
    with handles_errors(as_json):
        for merged in merge_records(read_records(digests)):
            results += publish_merged(merged)
    if as_json:
        print(json.dumps({"ok": True, "images": [r.as_json() for r in results]}, indent=2))
        return
    for r in results:
        out.print(f"image {r.step}: {r.summary()}", highlight=False, soft_wrap=True)


def report(
    args: Annotated[list[str] | None, typer.Argument(
        help="[PLAN] [IMAGE]: IMAGE is REGISTRY/REPO:TAG, oci:DIR[:REF], or a bare TAG of the "
        "plan's images (default: each image step's first tag, else its build in the local "
        "store)", show_default=False)] = None,
    against: Annotated[str | None, typer.Option(
        help="compare with this image (a bare TAG: the same repository or layout)")] = None,
    plan_file: FileOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table | markdown | json")] = "table",
    cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Per platform: compressed and uncompressed size, the layers and the steps that made
    them, layers shared across platforms, and the delta against another tag. An image of the
    plan that was not pushed (or has no tags) is read from the local store, as built."""
    import tempfile

    from crossplan import release
    from crossplan.recipes.models import ImageStep

    fmt = "json" if as_json else fmt
    if fmt not in ("table", "markdown", "json"):
        fail(RecipeError(f"unknown format '{fmt}'", hint="use table, markdown or json"), False)
    reports = []
    with handles_errors(fmt == "json"), tempfile.TemporaryDirectory(prefix="crossplan-") as tmp:
        rest = list(args or [])
        plan_arg = rest.pop(0) if rest and _is_plan_arg(rest[0]) else None
        if len(rest) > 1:
            raise RecipeError(f"too many arguments: {' '.join(rest)}",
                              hint="plan report [PLAN] [IMAGE]")
        image = rest[0] if rest else None
        explicit = image is not None and ("/" in image or image.startswith(
            ("oci:", "oci-archive:")))
        recipe = None
        try:
            recipe = api.load(plan_path(plan_arg, plan_file))
        except RecipeError:
            if not explicit or plan_arg is not None or plan_file is not None:
                raise  # an explicit image needs no plan (its step ids only label layers)
        steps = list(recipe.steps) if recipe is not None else []
        images = [(sid, s.tags) for sid, s in recipe.steps.items()
                  if isinstance(s, ImageStep)] if recipe is not None else []
        targets: list[tuple[str | None, str | None]] = []
        if explicit:
            targets = [(None, image)]
        else:
            tagged = [(sid, tags) for sid, tags in images if tags]
            if tagged:
                refs = release.plan_references(tagged, image)
                targets = [(sid, ref) for (sid, _), ref in zip(tagged, refs, strict=True)]
            if image is None:  # untagged image steps: their build in the store
                targets += [(sid, None) for sid, tags in images if not tags]
            if not targets:
                release.plan_references(images, image)  # raises: nothing to report on
        for n, (sid, ref) in enumerate(targets):
            rep = _report_or_stored(recipe, sid, ref, steps, cache_dir, Path(tmp) / str(n))
            if against is not None and ref is not None:
                rep = release.compare(rep, _read_report(release.sibling(ref, against), steps))
            reports.append(rep)
    if fmt == "json":
        print(json.dumps({"ok": True, "images": [r.as_json() for r in reports]}, indent=2))
    elif fmt == "markdown":
        print("\n".join(release.markdown(r) for r in reports), end="")
    else:
        for r in reports:
            out.print(release.rich_report(r))


def _is_plan_arg(text: str) -> bool:
    p = Path(text)
    return p.is_file() or (p.is_dir() and (p / "plan.toml").is_file())


def _report_or_stored(
    recipe: Recipe | None, sid: str | None, ref: str | None, steps: list[str],
    cache_dir: Path | None, tmp: Path,
) -> ImageReport:
    """The image at ``ref``; when it is not there (not pushed, registry down) or the step has
    no tags, the build of image step ``sid`` in the local store."""
    problem: CrossplanError | None = None
    if ref is not None:
        try:
            return _read_report(ref, steps)
        except CrossplanError as exc:
            if recipe is None or sid is None:
                raise
            problem = exc
    assert recipe is not None and sid is not None
    stored = _stored_layout(recipe, sid, cache_dir, tmp)
    if stored is None:
        if problem is not None:
            raise problem
        raise RecipeError(f"image step '{sid}' has no tags and no build in the store",
                          file=recipe.label_of(sid), step=sid,
                          hint="build it first: plan run PLAN " + sid)
    import dataclasses

    why = "not found at " + ref if ref is not None else "no tags"
    return dataclasses.replace(_read_report(stored, steps),
                               reference=f"local store: {sid} ({why})")


def _stored_layout(recipe: Recipe, sid: str, cache_dir: Path | None, tmp: Path) -> str | None:
    """``oci:DIR`` of image step ``sid`` as the store holds it for the current inputs."""
    from crossplan.images.protocol import LAYOUT_DIR

    p = api.plan(recipe, None, cache_dir=cache_dir)
    ex = api.explain(p, sid, None, cache_dir=cache_dir)
    if ex.key is None or not ex.cached:
        return None
    store = api.store_for(cache_dir)
    try:
        entry = store.get(ex.key)
        if entry is None:
            return None
        store.materialize(entry, tmp)
    finally:
        store.close()
    return f"oci:{tmp / LAYOUT_DIR}"


def _read_report(ref: str, steps: list[str]) -> ImageReport:
    from crossplan import release

    source = release.open_source(ref)
    try:
        return release.read_image(source, steps=steps)
    finally:
        source.close()


@tags_app.command("prune")
def tags_prune(
    repository: Annotated[str, typer.Argument(help="REGISTRY/REPO (no tag)")],
    keep: Annotated[int, typer.Option("--keep", min=1, help="how many releases to keep")],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run/--yes", help="only print what would be deleted (default), or delete")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Delete the tags (and arch tags) of all but the newest N releases; never a digest a
    kept tag still uses. Newest: the index's org.opencontainers.image.created annotation or
    the config's created time; ties by version order (1.10 > 1.9 > 1.9-rc1 > latest)."""
    from rich.table import Table

    from crossplan import release

    with handles_errors(as_json):
        result = release.prune(repository, keep, dry_run=dry_run)
    if as_json:
        print(json.dumps(result.as_json(), indent=2))
        return
    table = Table(show_header=True, header_style="bold")
    for col in ("action", "tag", "digest", "created", "why"):
        table.add_column(col)
    for d in result.decisions:
        action = "[red]delete[/]" if d.action == "delete" else "[green]keep[/]"
        table.add_row(action, escape(d.tag), d.digest.split(":")[-1][:12], d.created or "?",
                      escape(d.reason))
    out.print(table)
    n, m = len(result.deleted_tags), len(result.manifests)
    if result.dry_run:
        out.print(f"dry run: would delete {n} tag(s) ({m} manifest(s)) from "
                  f"{result.repository}; run again with --yes to delete", highlight=False)
    else:
        out.print(f"deleted {n} tag(s) ({m} manifest(s)) from {result.repository}; "
                  f"{len(result.remaining)} tag(s) left", highlight=False)
