"""Which image backend builds an image step, and ``compile = "container"`` planning (pure).

Backend rule: ``backend = "oci"|"buildx"`` is taken as written; ``auto`` is buildx when the
recipe has a ``[buildx]`` table, else the daemonless OCI backend. The rule reads the recipe
only, never the Docker daemon, so a plan (and ``plan graph``) is the same whether or not a
daemon answers; a buildx image with no reachable daemon fails at run time (exit 3).
"""

from __future__ import annotations

from collections.abc import Mapping

from crossplan.planner.graph import step_deps
from crossplan.recipes.models import ImageStep, Recipe

__all__ = ["COMPILE_KINDS", "choose_backend", "container_compiled", "pruned_steps", "uses_buildx"]

COMPILE_KINDS = ("go", "rust", "c")


def choose_backend(recipe: Recipe, step: ImageStep) -> str:
    """``buildx`` or ``oci`` for an image step (see the module doc)."""
    if step.backend != "auto":
        return step.backend
    return "buildx" if "buildx" in recipe.model_fields_set else "oci"


def uses_buildx(recipe: Recipe, sid: str) -> bool:
    step = recipe.steps.get(sid)
    return isinstance(step, ImageStep) and choose_backend(recipe, step) == "buildx"


def container_compiled(recipe: Recipe) -> dict[str, tuple[str, ...]]:
    """Image step -> the go/rust/c steps it compiles in buildx (``compile = "container"``)."""
    if recipe.buildx.compile != "container":
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for sid, step in recipe.steps.items():
        if isinstance(step, ImageStep) and uses_buildx(recipe, sid):
            steps = tuple(dict.fromkeys(
                c.from_ for c in step.copy_ if recipe.steps[c.from_].kind in COMPILE_KINDS
            ))
            if steps:
                out[sid] = steps
    return out


def pruned_steps(recipe: Recipe, compiled: Mapping[str, tuple[str, ...]]) -> set[str]:
    """Compile steps no host node needs any more: every consumer compiles them in buildx."""
    inside = {s for steps in compiled.values() for s in steps}
    pruned = set()
    for s in inside:
        consumers = {t for t, st in recipe.steps.items() if s in step_deps(st)}
        if all(t in compiled and s in compiled[t] for t in consumers):
            pruned.add(s)
    return pruned
