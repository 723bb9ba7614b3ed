"""The dev loop: ``load_image`` (one platform of an image step into the local Docker engine)
and ``watch`` (rebuild on save, the build machine's platform first).

``watch`` takes its changes from an injectable source (the CLI wires ``watchfiles``; tests
feed lists of paths) and its build from an injectable function, so the loop itself is
testable without a watcher, a store or a daemon.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossplan.api.planning import load, plan, store_for
from crossplan.api.running import RunOptions, run
from crossplan.errors import CrossplanError, RecipeError, StepFailed
from crossplan.executors.events import OnEvent
from crossplan.executors.result import RunResult, StepResult
from crossplan.images.load import LoadedImage, default_tag, load_platform
from crossplan.planner.graph import ANY, NodeId
from crossplan.planner.plan import Plan
from crossplan.platforms import Platform, build_platform
from crossplan.recipes.models import ImageStep, Recipe

__all__ = [
    "ChangeSource",
    "LoadResult",
    "Rebuild",
    "load_image",
    "run_host_first",
    "watch",
    "watch_paths",
]

RunFn = Callable[[Plan, RunOptions, OnEvent | None], RunResult]


def _run(p: Plan, opts: RunOptions, on_event: OnEvent | None) -> RunResult:
    return run(p, opts, on_event=on_event)


# ---------------------------------------------------------------------------- plan load


@dataclass(frozen=True)
class LoadResult:
    """What ``plan load`` did: the build (``result``) and the image it loaded."""

    image: LoadedImage
    result: RunResult
    backend: str

    def as_json(self) -> dict[str, Any]:
        return {"ok": True, **self.image.as_json(), "backend": self.backend,
                "run": self.result.as_json()}


def _image_step(recipe: Recipe, step: str | None) -> str:
    steps = [s for s, st in recipe.steps.items() if isinstance(st, ImageStep)]
    if step is None:
        if len(steps) == 1:
            return steps[0]
        raise RecipeError("which image step? " + ("this recipe has none" if not steps else
                          "it has several"), file=recipe.label,
                          hint="image steps: " + (", ".join(steps) or 'none: add kind = "image"'))
    if step not in steps:
        import difflib

        what = "unknown step" if step not in recipe.steps else "not an image step:"
        close = difflib.get_close_matches(step, steps, n=1)
        raise RecipeError(f"{what} '{step}'", file=recipe.label, hint=(
            f"did you mean '{close[0]}'? " if close else "") + "image steps: " + (
            ", ".join(steps) or "none"))
    return step


def load_image(
    recipe: Recipe, step: str | None = None, *, platform: str | Platform | None = None,
    tag: str | None = None, cache_dir: str | Path | None = None,
    environ: Mapping[str, str] | None = None, on_event: OnEvent | None = None,
) -> LoadResult:
    """Build image ``step`` (and what it needs, or find it in the store) and load its
    ``platform`` image (default: this machine's) into the local Docker engine as ``tag``
    (default: the step's first tag, else ``crossplan/<project>-<step>:dev``).

    RecipeError (exit 2): not an image step, or a platform it does not build;
    EnvironmentProblem (exit 3): the engine is unreachable; StepFailed (exit 1)."""
    from crossplan.backends.buildx.engine import Engine

    sid = _image_step(recipe, step)
    img = recipe.steps[sid]
    assert isinstance(img, ImageStep)
    plat = platform if isinstance(platform, Platform) else (
        Platform.parse(platform) if platform else build_platform())
    name = tag or default_tag(recipe.project.name, sid, img.tags)
    from crossplan.images.load import normalized

    normalized(name)  # a bad --tag is a usage error, before anything is built
    p = plan(recipe, cache_dir=cache_dir, environ=environ)
    node = p.nodes.get(NodeId(sid, ANY))
    if node is None or plat not in node.platforms:
        have = ", ".join(str(x) for x in node.platforms) if node else "none"
        raise RecipeError(f"image step '{sid}' does not build {plat}", file=recipe.label,
                          step=sid, hint=f"its platforms: {have} (pick one with --platform)")
    engine = Engine(environ)
    try:
        engine.ping()  # before a long build, not after it
        result = run(p, RunOptions(cache_dir=cache_dir, targets=[sid], environ=environ),
                     on_event=on_event)
        if not result.ok:
            failed = [s.error for s in result.steps if s.status == "failed" and s.error]
            raise StepFailed(failed[0] if failed else "the build failed", file=recipe.label)
        key = result.step(sid).key
        store = store_for(cache_dir)
        try:
            entry = store.get(key) if key else None
            if entry is None:
                raise StepFailed(f"the stored image of '{sid}' is gone", step=sid,
                                 file=recipe.label, hint="run `plan load` again")
            loaded = load_platform(store, entry, engine, step=sid, platform=plat, tag=name,
                                   label=recipe.label)
        finally:
            store.close()
    finally:
        engine.close()
    backend = p.facts.backends.get(sid, "oci") if p.facts else "oci"
    return LoadResult(loaded, result, backend)


# ---------------------------------------------------------------------------- watch


def run_host_first(
    p: Plan, options: RunOptions | None = None, *, on_event: OnEvent | None = None,
    run_fn: RunFn = _run,
) -> tuple[RunResult, float | None]:
    """Run the nodes of ``p.build_platform`` (and what they need) first, then the rest:
    (the merged result, the seconds the first part took, None when there was none)."""
    opts = options or RunOptions()
    full = p.subplan(p.select(opts.targets)) if opts.targets else p
    host = str(full.build_platform)
    first = [n for n in full.nodes if n.platform == host]
    rest = dataclasses.replace(opts, targets=[])
    if not first or len(full.subplan(first).nodes) == len(full.nodes):
        return run_fn(full, rest, on_event), None
    quick = dataclasses.replace(rest, output=None, push=False, smoke=False)
    r1 = run_fn(full.subplan(first), quick, on_event)
    if not r1.ok and not opts.keep_going:
        done = {s.node for s in r1.steps}
        skipped = tuple(StepResult(n, "skipped", None, 0.0) for n in full.nodes if n not in done)
        return dataclasses.replace(r1, steps=(*r1.steps, *skipped)), r1.seconds
    r2 = run_fn(full, rest, on_event)
    before = {s.node: s for s in r1.steps if s.status != "cached"}
    steps = tuple(before.get(s.node, s) if s.status == "cached" else s for s in r2.steps)
    warnings = tuple(dict.fromkeys((*r1.warnings, *r2.warnings)))
    return RunResult(steps, r2.images, warnings, r1.seconds + r2.seconds), r1.seconds


@dataclass(frozen=True)
class Rebuild:
    """One round of the loop: what changed, and the build (or the error that stopped it)."""

    iteration: int  # 0: the first build
    changed: tuple[str, ...]  # relative to the plan's directory
    result: RunResult | None
    error: CrossplanError | None = None
    seconds: float = 0.0
    host: str = ""
    host_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.result is not None and self.result.ok

    def summary(self) -> str:
        """One line: ``#2 src/a.txt changed: 2 built, 4 cached in 0.51s (linux/amd64
        first: 0.20s)``."""
        if self.iteration == 0:
            what = "first build"
        else:
            shown = ", ".join(self.changed[:3])
            more = f" (+{len(self.changed) - 3} more)" if len(self.changed) > 3 else ""
            what = f"{shown}{more} changed"
        if self.error is not None:
            return f"#{self.iteration} {what}: error: {self.error.message}"
        assert self.result is not None
        counts: dict[str, int] = {}
        for s in self.result.steps:
            counts[s.status] = counts.get(s.status, 0) + 1
        order = ("built", "substituted", "cached", "failed", "skipped")
        text = ", ".join(f"{counts[k]} {k}" for k in order if counts.get(k)) or "nothing to do"
        failed = [str(s.node) for s in self.result.steps if s.status == "failed"]
        head = f"FAILED {', '.join(failed)}; " if failed else ""
        host = (f" ({self.host} first: {self.host_seconds:.2f}s)"
                if self.host_seconds is not None else "")
        return f"#{self.iteration} {what}: {head}{text} in {self.seconds:.2f}s{host}"

    def as_json(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration, "changed": list(self.changed), "ok": self.ok,
            "seconds": round(self.seconds, 3), "host": self.host,
            "host_seconds": round(self.host_seconds, 3) if self.host_seconds else None,
            "summary": self.summary(),
            "error": self.error.render() if self.error else None,
            "exit_code": self.error.exit_code if self.error else None,
            "result": self.result.as_json() if self.result else None,
        }


# ``changes(paths)`` yields batches of changed paths under ``paths``, blocking between them;
# the loop calls it again (new paths) when a plan.toml edit changed what to watch.
ChangeSource = Callable[[tuple[Path, ...]], Iterable[Collection[Path]]]
Build = Callable[[Recipe], tuple[RunResult, float | None]]  # (result, host seconds)


def watch_paths(recipe: Recipe) -> tuple[Path, ...]:
    """What to watch: every step's ``src`` tree and the plan.toml files (members' too)."""
    paths = [recipe.file.resolve(), *(m.file.resolve() for m in recipe.members)]
    for step in recipe.steps.values():
        if step.src is not None:
            paths.append((recipe.root / step.src).resolve())
    out: list[Path] = []
    for path in sorted(set(paths), key=lambda x: len(x.parts)):
        if not any(path.is_relative_to(o) for o in out if o.is_dir()):
            out.append(path)
    return tuple(sorted(out))


def _relevant(changed: Iterable[Path], watched: tuple[Path, ...],
              ignored: tuple[Path, ...]) -> list[Path]:
    out = []
    for raw in changed:
        path = Path(raw).absolute()
        if any(path.is_relative_to(i) for i in ignored):
            continue
        if any(path == w or path.is_relative_to(w) for w in watched):
            out.append(path)
    return sorted(set(out))


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def watch(
    plan_path: str | Path,
    changes: ChangeSource,
    options: RunOptions | None = None,
    *,
    platforms: list[str] | tuple[str, ...] | str | None = None,
    on_rebuild: Callable[[Rebuild], None] | None = None,
    on_event: OnEvent | None = None,
    max_iterations: int | None = None,
    ignore: Iterable[str | Path] = (),
    build: Build | None = None,
) -> list[Rebuild]:
    """Build ``plan_path`` once, then rebuild after each batch of ``changes`` to its inputs
    (the build machine's platform first: ``run_host_first``), until the source ends or
    ``max_iterations`` rebuilds after the first. A recipe or build error is reported
    (``Rebuild.error``) and the loop goes on; only a broken recipe at the start raises.
    ``ignore``: paths whose changes never count (outputs written inside a src tree).
    Returns every round, the first build included."""
    opts = options or RunOptions()
    plan_file = Path(plan_path)
    do_build = build or _builder(opts, platforms, on_event)
    ignored = tuple(Path(i).absolute() for i in (
        *ignore, *([opts.export] if opts.export else []),
        *([opts.cache_dir] if opts.cache_dir else [])))
    emit = on_rebuild or (lambda r: None)
    recipe = load(plan_file)  # a recipe broken from the start: RecipeError, exit 2
    root = recipe.root.resolve()
    rounds: list[Rebuild] = []

    def one(iteration: int, changed: tuple[str, ...]) -> None:
        nonlocal recipe
        started = time.monotonic()
        host = str(build_platform())
        try:
            if iteration:
                recipe = load(plan_file)
            result, host_seconds = do_build(recipe)
            r = Rebuild(iteration, changed, result, None, time.monotonic() - started, host,
                        host_seconds)
        except CrossplanError as exc:
            r = Rebuild(iteration, changed, None, exc, time.monotonic() - started, host)
        rounds.append(r)
        emit(r)

    one(0, ())
    iteration = 0
    watched = watch_paths(recipe)
    while max_iterations is None or iteration < max_iterations:
        restart = False
        batches = iter(changes(watched))
        try:
            for batch in batches:
                relevant = _relevant(batch, watched, ignored)
                if not relevant:
                    continue
                iteration += 1
                one(iteration, tuple(_display(p, root) for p in relevant))
                now = watch_paths(recipe)
                # a plan.toml edit: watch the new trees, and the new file (editors replace
                # it by a rename, which ends a watch on the old one)
                if now != watched or any(p.name == "plan.toml" for p in relevant):
                    watched, restart = now, True
                if restart or (max_iterations is not None and iteration >= max_iterations):
                    break
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
        if not restart:
            break
    return rounds


def _builder(opts: RunOptions, platforms: list[str] | tuple[str, ...] | str | None,
             on_event: OnEvent | None) -> Build:
    def build(recipe: Recipe) -> tuple[RunResult, float | None]:
        p = plan(recipe, platforms, cache_dir=opts.cache_dir, environ=opts.environ)
        return run_host_first(p, opts, on_event=on_event)

    return build
