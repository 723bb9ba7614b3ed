"""The public Python API: load -> plan -> run, plus explain, affected, the remote cache and
toolchains. Functions take a Recipe or a Plan, not a path; the CLI only parses arguments
and renders what these return."""

from crossplan.api.caching import cache_keygen, cache_pull, cache_push
from crossplan.api.dev import LoadResult, Rebuild, load_image, run_host_first, watch
from crossplan.api.inspecting import affected, explain
from crossplan.api.planning import facts, load, plan, recipe_from_dict, store_for
from crossplan.api.running import RunOptions, run, toolcache_dir
from crossplan.api.toolchains import install_toolchains, toolchains
from crossplan.executors.events import StepEvent
from crossplan.executors.result import RunResult

__all__ = [
    "LoadResult",
    "Rebuild",
    "RunOptions",
    "RunResult",
    "StepEvent",
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
    "toolcache_dir",
    "toolchains",
    "watch",
]
