"""Checks on a parsed recipe that need more than one field: platforms, paths, deps, outputs."""

from __future__ import annotations

import difflib
from pathlib import PurePosixPath

from crossplan.errors import RecipeError
from crossplan.platforms import Platform
from crossplan.recipes import rules
from crossplan.recipes.models import ImageStep, Recipe

__all__ = ["check_relative", "validate_recipe"]


def validate_recipe(recipe: Recipe) -> None:
    """Raise RecipeError (exit 2) naming the file and step for the first problem found."""
    for p in recipe.project.platforms:
        _platform(p, recipe.label, None)
    seen_outputs: dict[str, str] = {}
    for sid, step in recipe.steps.items():
        label = recipe.label_of(sid)  # a workspace member's own plan.toml for its steps
        if not sid or "@" in sid or sid.startswith((".", "/")) or sid.endswith("/"):
            raise RecipeError(
                f"invalid step id '{sid}'", file=label, hint="use letters, digits, - _ : . /"
            )
        for p in step.platforms or ():
            _platform(p, label, sid)
        if step.kind in ("shell", "c") and step.src is None:
            raise RecipeError(
                "missing 'src'", file=label, step=sid,
                hint='add `src = "dir/"` (the input tree, relative to plan.toml; "." for all)',
            )
        if step.src is not None:
            check_relative(step.src, "src", label, sid)
        for out in step.outputs:
            check_relative(out, "output", label, sid)
            where = str(PurePosixPath(step.src or ".") / out)
            if where in seen_outputs:
                raise RecipeError(
                    f"output '{out}' is also written by step '{seen_outputs[where]}'",
                    file=label, step=sid, hint="give each step its own output paths",
                )
            seen_outputs[where] = sid
        _sysroot(recipe, sid, step, label)
        deps = list(step.deps)
        if isinstance(step, ImageStep):
            deps += [c.from_ for c in step.copy_]
        for dep in deps:
            if dep not in recipe.steps:
                raise RecipeError(
                    f"unknown dep '{dep}'", file=label, step=sid, hint=_dep_hint(recipe, dep),
                )
        if isinstance(step, ImageStep):
            for c in step.copy_:
                if c.src is not None:
                    check_relative(c.src, "copy.src", label, sid)
                if not c.dest.startswith("/"):
                    raise RecipeError(
                        f"copy dest '{c.dest}' must be an absolute path in the image",
                        file=label, step=sid,
                    )


def _sysroot(recipe: Recipe, sid: str, step: object, label: str) -> None:
    """``sysroot = "NAME"`` names a [sysroots.NAME] table; Debian sysroots are glibc."""
    name = getattr(step, "sysroot", None)
    if name is None:
        return
    if name not in recipe.sysroots:
        known = ", ".join(sorted(recipe.sysroots)) or "none declared"
        raise RecipeError(f"unknown sysroot '{name}'", file=label, step=sid,
                          hint=f'declare [sysroots.{name}] packages = ["zlib1g-dev"] '
                          f"(known: {known})")
    libc = getattr(step, "libc", None)
    if libc is not None and libc.startswith("musl"):
        raise RecipeError(
            f"sysroot '{name}' holds Debian's glibc libraries but the step says libc = "
            f'"{libc}"', file=label, step=sid,
            hint='use libc = "gnu" (or "gnu.2.31" for a floor) with a Debian sysroot',
        )


def _dep_hint(recipe: Recipe, dep: str) -> str:
    close = difflib.get_close_matches(dep, list(recipe.steps), n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    if ":" in dep and not recipe.members:
        return ("'member:step' deps resolve only when this plan.toml is loaded through its "
                "workspace root (the plan.toml with [workspace] members)")
    if recipe.members:
        return ("deps name steps: 'name' in the same member, 'member/path:name' in another, "
                "':name' in the workspace root")
    return "deps name other steps' ids"


def _platform(text: str, label: str, step: str | None) -> Platform:
    try:
        return Platform.parse(text)
    except RecipeError as exc:
        raise RecipeError(exc.message, file=label, step=step, hint=exc.hint) from None


def check_relative(path: str, what: str, label: str, step: str) -> None:
    """Reject absolute paths and paths escaping the project with ``..``."""
    try:
        rules.relative(path, what)
    except rules.Violation as exc:
        raise RecipeError(exc.message, file=label, step=step, hint=exc.hint) from None
