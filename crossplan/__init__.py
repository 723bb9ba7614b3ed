"""crossplan: a cross-compilation-first multi-arch image build planner with Nix-style caching.

The public API::

    import crossplan
    recipe = crossplan.load("plan.toml")
    p = crossplan.plan(recipe, platforms=["linux/amd64", "linux/arm64"])
    result = crossplan.run(p)
"""

from crossplan.api import RunOptions, explain, load, plan, recipe_from_dict, run, store_for
from crossplan.errors import (
    CrossplanError,
    EnvironmentProblem,
    RecipeError,
    StepFailed,
)
from crossplan.planner import NodeId, Plan, PlannedNode
from crossplan.platforms import Platform
from crossplan.recipes.models import Recipe
from crossplan.runner.events import StepEvent
from crossplan.runner.result import ImageResult, RunResult, StepResult

__all__ = [
    "CrossplanError",
    "EnvironmentProblem",
    "ImageResult",
    "NodeId",
    "Plan",
    "PlannedNode",
    "Platform",
    "Recipe",
    "RecipeError",
    "RunOptions",
    "RunResult",
    "StepEvent",
    "StepFailed",
    "StepResult",
    "explain",
    "load",
    "plan",
    "recipe_from_dict",
    "run",
    "store_for",
]
__version__ = "0.1.0"
