"""crossplan: a cross-compilation-first multi-arch image build planner with Nix-style caching.

The public API (see docs/api.md)::

    import crossplan
    recipe = crossplan.load("plan.toml")            # a plan.toml, or a workspace root
    p = crossplan.plan(recipe, platforms=["linux/amd64", "linux/arm64"])
    result = crossplan.run(p, crossplan.RunOptions(jobs=4), on_event=print)
    changed = crossplan.affected(p, since="origin/main")
"""

from __future__ import annotations

from crossplan._lazy import lazy_names

TYPE_CHECKING = False  # typing is not imported: `plan --version` costs about one `python`

# Where each public name lives. Imported on first use, so that importing a subpackage (say
# crossplan.planner) or running `plan --help` does not load the whole package.
_HOME = {
    **dict.fromkeys(
        ["RunOptions", "affected", "cache_keygen", "cache_pull", "cache_push", "explain",
         "facts", "install_toolchains", "load", "load_image", "plan", "recipe_from_dict",
         "run", "run_host_first", "store_for", "toolchains", "watch"], "crossplan.api"),
    **dict.fromkeys(["CrossplanError", "EnvironmentProblem", "RecipeError", "StepFailed"],
                    "crossplan.errors"),
    "StepEvent": "crossplan.executors.events",
    **dict.fromkeys(["ImageResult", "RunResult", "StepResult"], "crossplan.executors.result"),
    "Affected": "crossplan.inspect.affected",
    "Explanation": "crossplan.inspect.explain",
    **dict.fromkeys(["NodeId", "Plan", "PlannedNode"], "crossplan.planner"),
    "AffectedNode": "crossplan.planner.affected",
    "Platform": "crossplan.platforms",
    **dict.fromkeys(["Member", "Recipe"], "crossplan.recipes.models"),
    "Workspace": "crossplan.recipes.workspace",
}

__all__ = [
    "Affected",
    "AffectedNode",
    "CrossplanError",
    "EnvironmentProblem",
    "Explanation",
    "ImageResult",
    "Member",
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
    "Workspace",
    "affected",
    "cache_keygen",
    "cache_pull",
    "cache_push",
    "explain",
    "facts",
    "install_toolchains",
    "load",
    "load_image",
    "plan",
    "recipe_from_dict",
    "run",
    "run_host_first",
    "store_for",
    "toolchains",
    "watch",
]
__version__ = "0.1.0"


__getattr__ = lazy_names(__name__, _HOME)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:
    from crossplan.api import (
        RunOptions,
        affected,
        cache_keygen,
        cache_pull,
        cache_push,
        explain,
        install_toolchains,
        load,
        plan,
        recipe_from_dict,
        run,
        store_for,
        toolchains,
    )
    from crossplan.errors import (
        CrossplanError,
        EnvironmentProblem,
        RecipeError,
        StepFailed,
    )
    from crossplan.executors.events import StepEvent
    from crossplan.executors.result import ImageResult, RunResult, StepResult
    from crossplan.inspect.affected import Affected
    from crossplan.inspect.explain import Explanation
    from crossplan.planner import NodeId, Plan, PlannedNode
    from crossplan.planner.affected import AffectedNode
    from crossplan.platforms import Platform
    from crossplan.recipes.models import Member, Recipe
    from crossplan.recipes.workspace import Workspace
