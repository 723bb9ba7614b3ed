"""CI pipelines for a recipe: ``Recipe -> Needs -> text`` for GitHub Actions, GitLab CI, Jenkins.

Generation is pure and stable (same recipe and location, same bytes); ``write`` is the only
side effect::

    loc = locate(recipe.file, git_toplevel(recipe.root))   # the repository root, the plan in it
    pipeline = generate("github", recipe, options, loc)    # Pipeline(system, path, text, needs)
    write(pipeline, loc)                        # <root>/.github/workflows/crossplan.yml

Commands in the pipeline run from the root, with the plan's path relative to it.
``CiOptions(runners="native")`` fans out: one job per platform on a runner of that
architecture (``fanout.py``), then a job assembling the multi-platform index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from crossplan.ci import github, gitlab, jenkins
from crossplan.ci.fanout import Fanout, fanout
from crossplan.ci.needs import CiOptions, Needs, analyze
from crossplan.ci.repo import Location, git_toplevel, locate, resolve_install
from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.recipes.models import Recipe

__all__ = [
    "SYSTEMS",
    "CiOptions",
    "Fanout",
    "Location",
    "Needs",
    "Pipeline",
    "analyze",
    "generate",
    "git_toplevel",
    "locate",
    "write",
]

_Render = Callable[[Needs, CiOptions], str]
_RenderNative = Callable[[Fanout, CiOptions], str]
SYSTEMS: dict[str, tuple[_Render, _RenderNative, str]] = {
    "github": (github.render, github.render_native, github.PATH),
    "gitlab": (gitlab.render, gitlab.render_native, gitlab.PATH),
    "jenkins": (jenkins.render, jenkins.render_native, jenkins.PATH),
}
RUNNERS = ("single", "native")


@dataclass(frozen=True)
class Pipeline:
    """A generated pipeline; ``path`` is relative to ``location.root``."""

    system: str
    path: str
    text: str
    needs: Needs
    location: Location
    jobs: tuple[Needs, ...] = ()  # the native fan-out's per-platform jobs

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
            "root": str(self.location.root), "git": self.location.git,
            "plan": self.location.plan, "install": n.pip[0],
            "runners": "native" if self.jobs else "single",
            "jobs": [{"platform": str(j.only), "runner": str(j.runner)} for j in self.jobs],
        }


def generate(system: str, recipe: Recipe, options: CiOptions | None = None,
             location: Location | None = None) -> Pipeline:
    """The ``system`` pipeline (github | gitlab | jenkins) building ``recipe`` from
    ``location`` (default: the plan's directory as the root, no git)."""
    if system not in SYSTEMS:
        raise RecipeError(f"unknown CI system '{system}'", hint="use github, gitlab or jenkins")
    opts = options or CiOptions()
    if opts.runners not in RUNNERS:
        raise RecipeError(f"unknown --runners '{opts.runners}'", hint="use single or native")
    loc = location or locate(recipe.file, None)
    opts = replace(opts, install=resolve_install(opts.install, loc))
    render, render_native, path = SYSTEMS[system]
    if opts.runners == "native":
        fan = fanout(recipe, opts, plan_file=loc.plan)
        return Pipeline(system, path, render_native(fan, opts), fan.overall, loc, fan.jobs)
    needs = analyze(recipe, opts, plan_file=loc.plan)
    return Pipeline(system, path, render(needs, opts), needs, loc)


def write(pipeline: Pipeline) -> Path:
    """Write the pipeline at its location's root; returns the file."""
    target = pipeline.location.root / pipeline.path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(pipeline.text)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write {target}: {exc}",
                                 hint="check the directory's permissions") from None
    return target
