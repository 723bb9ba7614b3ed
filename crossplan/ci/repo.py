"""Where a pipeline lives: the repository root (``git rev-parse --show-toplevel``), the plan's
path relative to it, and how to install crossplan there.

CI systems read their pipeline only at the repository root (``.github/workflows/``,
``.gitlab-ci.yml``, ``Jenkinsfile``) and run its commands from there, so every path in a
generated pipeline is relative to that root.
"""

from __future__ import annotations

import os
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from crossplan.ci.needs import DEFAULT_INSTALL
from crossplan.errors import RecipeError

__all__ = ["Location", "git_toplevel", "locate", "resolve_install"]


@dataclass(frozen=True)
class Location:
    """``root``: where the pipeline file goes and its commands run; ``plan``: the plan file
    relative to it (POSIX); ``git``: whether ``root`` is a git work tree's top level;
    ``crossplan_repo``: whether ``root`` holds crossplan's own ``pyproject.toml``."""

    root: Path
    plan: str
    git: bool
    crossplan_repo: bool


def git_toplevel(directory: Path) -> Path | None:
    """The git work tree's top level holding ``directory``; None without git or a repository."""
    try:
        proc = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=directory,
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    top = proc.stdout.strip()
    return Path(top) if proc.returncode == 0 and top else None


def _is_crossplan(root: Path) -> bool:
    try:
        doc = tomllib.loads((root / "pyproject.toml").read_text())
    except (OSError, ValueError):
        return False
    project = doc.get("project")
    return isinstance(project, dict) and project.get("name") == "crossplan"


def locate(plan_file: Path, toplevel: Path | None) -> Location:
    """The pipeline's location for ``plan_file``: ``toplevel`` (the git root) when given,
    else the plan's own directory."""
    plan = plan_file.resolve()
    root = (toplevel or plan.parent).resolve()
    rel = Path(os.path.relpath(plan, root)).as_posix()
    if rel.startswith("../"):
        raise RecipeError(f"{plan_file} is outside the repository {root}")
    return Location(root, rel, toplevel is not None, _is_crossplan(root))


def resolve_install(install: str | None, loc: Location) -> str:
    """The pip requirement installing crossplan in the pipeline: ``install`` when given, else
    the checkout itself (``./``) in crossplan's own repository; otherwise it must be given."""
    if install:
        return install
    if loc.crossplan_repo:
        return DEFAULT_INSTALL
    raise RecipeError(
        f"plan ci: how should the pipeline install crossplan? {loc.root} is not crossplan's "
        "repository (no pyproject.toml of the crossplan project at its root)",
        hint='pass --install "crossplan @ git+https://github.com/OWNER/crossplan" '
        "(a pip requirement: a git URL, crossplan==VERSION from your index, or a path)",
    )
