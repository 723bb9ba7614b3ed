"""The public Python API: load -> plan -> run, plus explain, affected, the remote cache and
toolchains. Functions take a Recipe or a Plan, not a path; the CLI only parses arguments
and renders what these return.

Each name is imported on first use (``api.run`` does not load the remote cache, the dev
loop or the toolchain installer), so that ``plan run`` on a cached plan stays cheap."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crossplan._lazy import lazy_names

# Where each public name lives (imported on first attribute access).
_HOME = {
    **dict.fromkeys(["cache_keygen", "cache_pull", "cache_push"], "crossplan.api.caching"),
    **dict.fromkeys(["LoadResult", "Rebuild", "load_image", "run_host_first", "watch"],
                    "crossplan.api.dev"),
    **dict.fromkeys(["affected", "explain"], "crossplan.api.inspecting"),
    **dict.fromkeys(["facts", "load", "plan", "recipe_from_dict", "store_for"],
                    "crossplan.api.planning"),
    **dict.fromkeys(["LockResult", "lock"], "crossplan.api.locking"),
    **dict.fromkeys(["RunOptions", "run", "toolcache_dir"], "crossplan.api.running"),
    **dict.fromkeys(["install_toolchains", "toolchains"], "crossplan.api.toolchains"),
    "StepEvent": "crossplan.executors.events",
    "RunResult": "crossplan.executors.result",
}

__all__ = [
    "LoadResult",
    "LockResult",
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
    "lock",
    "plan",
    "recipe_from_dict",
    "run",
    "run_host_first",
    "store_for",
    "toolcache_dir",
    "toolchains",
    "watch",
]


__getattr__ = lazy_names(__name__, _HOME)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:
    from crossplan.api.caching import cache_keygen, cache_pull, cache_push
    from crossplan.api.dev import LoadResult, Rebuild, load_image, run_host_first, watch
    from crossplan.api.inspecting import affected, explain
    from crossplan.api.locking import LockResult, lock
    from crossplan.api.planning import facts, load, plan, recipe_from_dict, store_for
    from crossplan.api.running import RunOptions, run, toolcache_dir
    from crossplan.api.toolchains import install_toolchains, toolchains
    from crossplan.executors.events import StepEvent
    from crossplan.executors.result import RunResult
