"""Workspaces: a root plan.toml whose ``[workspace] members`` each hold a plan.toml, merged
into one Recipe whose step ids are ``member:step`` (one DAG, one store, one run).

Inside a member, ``deps = ["lib"]`` names the member's own step, ``"libs/shared:lib"`` another
member's, ``":gen"`` a step of the root; ``src`` and ``oci:`` bases are relative to the member
directory. A member's own deps appear in work dirs as ``deps/<name>/`` (as a standalone plan
would see them), every other dep as ``deps/<member:step>/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from crossplan.errors import RecipeError
from crossplan.recipes.loader import load
from crossplan.recipes.members import (
    MemberSource,
    dep_dir,
    expand_members,
    merge_members,
    resolve_ref,
)
from crossplan.recipes.models import Member, Recipe, Step

__all__ = [
    "MemberSource",
    "Workspace",
    "dep_dir",
    "expand_members",
    "merge_members",
    "resolve_ref",
]


@dataclass(frozen=True)
class Workspace:
    """A typed view of a loaded recipe as a workspace: its root, members and their steps.

    A recipe without ``[workspace]`` is a workspace of no members (all steps are the root's).
    """

    recipe: Recipe

    @classmethod
    def of(cls, recipe: Recipe) -> Workspace:
        return cls(recipe)

    @classmethod
    def load(cls, path: str | Path = "plan.toml") -> Workspace:
        """Load the root plan.toml (or the directory holding it) and its members."""
        return cls(load(path))

    @property
    def root(self) -> Path:
        return self.recipe.root

    @property
    def file(self) -> Path:
        return self.recipe.file

    @property
    def name(self) -> str:
        return self.recipe.project.name

    @property
    def members(self) -> tuple[Member, ...]:
        return self.recipe.members

    @property
    def root_steps(self) -> tuple[str, ...]:
        """Ids of the steps the root plan.toml defines itself."""
        return tuple(s for s in self.recipe.steps if self.recipe.member_of(s) is None)

    def member(self, path: str) -> Member:
        """The member at ``path`` (relative to the root, e.g. ``services/api``)."""
        want = PurePosixPath(path).as_posix()
        for m in self.members:
            if m.path == want:
                return m
        known = ", ".join(m.path for m in self.members) or "(none)"
        raise RecipeError(
            f"no workspace member '{path}'", file=self.recipe.label, hint=f"members: {known}"
        )

    def member_of(self, step_id: str) -> Member | None:
        """The member defining ``step_id`` (None for a root step)."""
        return self.recipe.member_of(step_id)

    def steps(self, member: str | None = None) -> dict[str, Step]:
        """Every step by id, or only those of the member at ``member``."""
        if member is None:
            return dict(self.recipe.steps)
        return {sid: self.recipe.steps[sid] for sid in self.member(member).steps}
