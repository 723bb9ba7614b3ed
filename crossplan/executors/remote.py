"""The remote cache as an executor wrapper: substitute a key the registry holds (verified),
else build with the inner executor and push the result in the background."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from crossplan.cache.store import Entry
from crossplan.executors.host import log_path
from crossplan.executors.protocol import ActionResult, Executor, dep_outputs
from crossplan.planner.actions import Action
from crossplan.planner.graph import NodeId

if TYPE_CHECKING:  # the registry client is loaded only when a remote cache is in use
    from crossplan.executors.substitution import RemoteRun

__all__ = ["RemoteCached"]


class RemoteCached:
    """Substitutes from / pushes to the shared cache around the inner executor."""

    def __init__(self, run: RemoteRun, inner: Executor, *, label: str = "") -> None:
        self.label = label  # the recipe file: logs are kept per project
        self.run = run
        self.inner = inner

    def execute(self, action: Action, deps: Mapping[NodeId, Entry]) -> ActionResult:
        if action.network:  # non-hermetic: never taken from, nor given to, the shared cache
            return self.inner.execute(action, deps)
        t0 = time.monotonic()
        key = action.key(dep_outputs(deps))
        entry = self.run.substitute(key, action.node)
        if entry is not None:
            log = log_path(self.run.store, action.node, self.label)
            return ActionResult(key, entry, "substituted", time.monotonic() - t0, log=log)
        result = self.inner.execute(action, deps)
        if result.outcome == "built":
            self.run.after_build(result.key, action.node, result.entry)
        return result
