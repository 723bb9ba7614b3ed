"""CI pipelines for a recipe: ``Recipe -> Needs -> text`` for GitHub Actions, GitLab CI, Jenkins.

Generation is pure and stable (same recipe, same bytes); ``write`` is the only side effect::

    pipeline = generate("github", recipe)      # Pipeline(system, path, text, needs)
    write(pipeline, recipe)                    # .github/workflows/crossplan.yml next to plan.toml
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossplan.ci import github, gitlab, jenkins
from crossplan.ci.needs import CiOptions, Needs, analyze
from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.recipes.models import Recipe

__all__ = ["SYSTEMS", "CiOptions", "Needs", "Pipeline", "analyze", "generate", "write"]

_Render = Callable[[Needs, CiOptions], str]
SYSTEMS: dict[str, tuple[_Render, str]] = {
    "github": (github.render, github.PATH),
    "gitlab": (gitlab.render, gitlab.PATH),
    "jenkins": (jenkins.render, jenkins.PATH),
}


@dataclass(frozen=True)
class Pipeline:
    """A generated pipeline; ``path`` is relative to the recipe's directory."""

    system: str
    path: str
    text: str
    needs: Needs

    def as_json(self) -> dict[str, Any]:
        n = self.needs
        return {
            "system": self.system, "path": self.path, "text": self.text,
            "needs": {
                "platforms": [str(p) for p in n.platforms], "pip": list(n.pip),
                "apt": list(n.apt), "rust": n.rust,
                "rust_targets": [t for _, t in n.rust_std] + list(n.rustup_targets),
                "docker": n.docker, "buildx": n.buildx, "qemu": list(n.qemu),
                "registries": [x.host for x in n.logins], "loopback_registries": list(n.loopback),
                "cache_remote": n.cache_remote,
                "tests": [{"step": s, "platform": str(p)} for s, p in n.tests],
                "push": n.push,
            },
        }


def generate(system: str, recipe: Recipe, options: CiOptions | None = None) -> Pipeline:
    """The ``system`` pipeline (github | gitlab | jenkins) building ``recipe``."""
    if system not in SYSTEMS:
        raise RecipeError(f"unknown CI system '{system}'", hint="use github, gitlab or jenkins")
    opts = options or CiOptions()
    render, path = SYSTEMS[system]
    needs = analyze(recipe, opts, plan_file=recipe.file.name)
    return Pipeline(system, path, render(needs, opts), needs)


def write(pipeline: Pipeline, recipe: Recipe) -> Path:
    """Write the pipeline next to the recipe's plan.toml; returns the file."""
    target = recipe.root / pipeline.path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(pipeline.text)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write {target}: {exc}",
                                 hint="check the directory's permissions") from None
    return target
