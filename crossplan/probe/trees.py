"""Input trees of a recipe's steps: each ``src`` checked and digested (once per shared tree)."""

from __future__ import annotations

from crossplan.errors import RecipeError
from crossplan.planner.tree import TreeDigest
from crossplan.probe.digest import StatMemo, tree_digest
from crossplan.recipes.models import Recipe, Step

__all__ = ["input_trees"]


def input_trees(
    recipe: Recipe, steps: list[str], memo: StatMemo | None
) -> dict[str, TreeDigest | None]:
    """Step id -> its input tree (None without ``src``). Steps sharing an input tree (often
    ``src = "."``) walk and hash it once."""
    by_src: dict[tuple[str | None, tuple[str, ...]], TreeDigest | None] = {}
    trees: dict[str, TreeDigest | None] = {}
    for sid in steps:
        step = recipe.steps[sid]
        shared = (step.src, tuple(step.exclude))
        if shared not in by_src:
            by_src[shared] = _tree(recipe, sid, step, memo)
        trees[sid] = by_src[shared]
    return trees


def _tree(recipe: Recipe, sid: str, step: Step, memo: StatMemo | None) -> TreeDigest | None:
    if step.src is None:
        return None
    root = (recipe.root / step.src).resolve()
    member = recipe.member_of(sid)
    project = (recipe.root / member.path if member else recipe.root).resolve()
    if root != project and project not in root.parents:
        raise RecipeError(
            f"src '{step.src}' escapes the {'member' if member else 'project'}",
            file=recipe.label_of(sid), step=sid,
            hint="keep inputs inside the directory holding plan.toml",
        )
    if not root.exists():
        raise RecipeError(
            f"src '{step.src}' does not exist ({root})", file=recipe.label_of(sid), step=sid,
            hint="create it or fix the path (relative to plan.toml)",
        )
    return tree_digest(root, exclude=step.exclude, memo=memo)
