"""Workspace members read from disk merged into one Recipe: globs, ``member:step`` ids, deps."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from crossplan.errors import RecipeError
from crossplan.recipes.models import ImageStep, Member, Recipe, Step
from crossplan.recipes.validate import check_relative

__all__ = ["MemberSource", "dep_dir", "expand_members", "merge_members", "resolve_ref"]

_GLOB = frozenset("*?[")
# Tables that belong to the workspace root: one toolchain set, one cache, one buildx config.
_ROOT_ONLY = ("workspace", "toolchains", "cache", "buildx")


@dataclass(frozen=True)
class MemberSource:
    """A member as read from disk: its path relative to the root, its recipe and raw data."""

    path: str
    recipe: Recipe
    data: dict[str, Any]


def expand_members(root: Path, patterns: Iterable[str], label: str) -> list[str]:
    """Member directories (posix, relative to ``root``) for ``members`` globs, sorted."""
    found: list[str] = []
    top = root.resolve()
    for pat in patterns:
        pp = PurePosixPath(pat)
        if pp.is_absolute() or ".." in pp.parts or any(c in pat for c in ":@\\"):
            raise RecipeError(
                f"invalid workspace member '{pat}'", file=label,
                hint='members are directories relative to the root, e.g. "services/*"',
            )
        if _GLOB & set(pat):
            dirs = sorted(p for p in root.glob(pat) if (p / "plan.toml").is_file())
            if not dirs:
                raise RecipeError(
                    f"workspace member pattern '{pat}' matches no directory with a plan.toml",
                    file=label, hint="fix the pattern or add the members' plan.toml files",
                )
        else:
            dirs = [root / pat]
            if not (root / pat / "plan.toml").is_file():
                raise RecipeError(
                    f"workspace member '{pat}' has no plan.toml ({root / pat / 'plan.toml'})",
                    file=label, hint="create it, or remove the member from [workspace] members",
                )
        for d in dirs:
            real = d.resolve()
            if real == top or top not in real.parents:
                raise RecipeError(
                    f"workspace member '{pat}' is not a directory below the root", file=label,
                    hint="members are subdirectories of the directory holding the root plan.toml",
                )
            rel = real.relative_to(top).as_posix()
            if rel not in found:
                found.append(rel)
    return sorted(found)


def resolve_ref(member: str, ref: str) -> str:
    """A dep as written in ``member``'s plan.toml -> its id in the workspace."""
    if ref.startswith(":"):
        return ref[1:]  # a step of the root plan.toml
    if ":" in ref:
        return ref  # another member's step, "libs/shared:lib"
    return f"{member}:{ref}"


def dep_dir(recipe: Recipe, sid: str, dep: str) -> str:
    """The directory (under ``deps/``) where ``dep``'s outputs appear in ``sid``'s work dir."""
    m = recipe.member_of(sid)
    if m is not None and recipe.member_of(dep) == m:
        return dep[len(m.path) + 1:]
    return dep


def _check_member(src: MemberSource, root_label: str) -> None:
    label = src.recipe.label
    for table in _ROOT_ONLY:
        if table in src.data:
            raise RecipeError(
                f"[{table}] is only allowed in the workspace root", file=label,
                hint=f"move it to {root_label}",
            )
    sde = src.data.get("project", {}).get("source_date_epoch")
    if sde is not None:
        raise RecipeError(
            "[project] source_date_epoch is only allowed in the workspace root", file=label,
            hint=f"set it in {root_label}",
        )
    for name, step in src.recipe.steps.items():
        if ":" in name or "@" in name or not name:
            raise RecipeError(
                f"invalid step name '{name}' in a workspace member", file=label, step=name,
                hint="member step names are plain (letters, digits, - _ . /); "
                "the workspace addresses them as member:name",
            )
        if step.src is not None:
            check_relative(step.src, "src", label, name)
        if isinstance(step, ImageStep) and step.base.startswith(("oci:", "oci-archive:")):
            check_relative(step.base.partition(":")[2], "base", label, name)


def _join(member: str, rel: str) -> str:
    joined = (PurePosixPath(member) / rel).as_posix()
    return joined + "/" if rel.endswith("/") and not joined.endswith("/") else joined


def _rebase(step: Step, member: str, platforms: tuple[str, ...] | None) -> Step:
    """The member's step as a step of the merged recipe (root-relative paths, full ids)."""
    update: dict[str, Any] = {"deps": tuple(resolve_ref(member, d) for d in step.deps)}
    if step.src is not None:
        update["src"] = _join(member, step.src)
    if step.platforms is None and platforms is not None:
        update["platforms"] = platforms
    if isinstance(step, ImageStep):
        update["copy_"] = tuple(
            c.model_copy(update={"from_": resolve_ref(member, c.from_)}) for c in step.copy_
        )
        if step.base.startswith(("oci:", "oci-archive:")):
            kind, _, rest = step.base.partition(":")
            update["base"] = f"{kind}:{_join(member, rest)}"
    return step.model_copy(update=update)


def merge_members(root: Recipe, sources: Sequence[MemberSource]) -> Recipe:
    """One Recipe holding the root's steps and every member's, as ``member:step``."""
    for sid in root.steps:
        if ":" in sid:
            raise RecipeError(
                f"invalid step id '{sid}' in a workspace root", file=root.label, step=sid,
                hint="':' separates member and step; name root steps without it",
            )
    steps: dict[str, Step] = dict(root.steps)
    members: list[Member] = []
    for src in sources:
        _check_member(src, root.label)
        project = src.data.get("project", {})
        platforms = src.recipe.project.platforms if "platforms" in project else None
        ids: list[str] = []
        for name, step in src.recipe.steps.items():
            sid = f"{src.path}:{name}"
            steps[sid] = _rebase(step, src.path, platforms)
            ids.append(sid)
        members.append(Member(
            path=src.path, name=src.recipe.project.name, file=src.recipe.file, steps=tuple(ids),
            platforms=platforms, description=src.recipe.project.description,
        ))
    return root.model_copy(update={"steps": steps, "members": tuple(members)})
