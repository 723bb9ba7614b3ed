"""Executor wrappers: the local store in front (cached), a build lock and publication behind
it, ELF verification of what was built, and routing of image actions to their backend."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from crossplan.cache.store import CorruptEntry, Entry, Store
from crossplan.errors import StepFailed
from crossplan.executors.events import OnEvent, StepEvent
from crossplan.executors.host import log_path
from crossplan.executors.protocol import ActionResult, Executor, dep_outputs
from crossplan.planner.actions import Action
from crossplan.planner.graph import NodeId
from crossplan.platforms import Platform
from crossplan.recipes.libc import libc_floor

__all__ = ["ByKind", "LocalCache", "Publishing", "Verified"]

# node -> what its store record holds besides the key (components, inputs...): for explain
Recorder = Callable[[Action, str, Mapping[NodeId, Entry]], dict[str, Any]]


def _hit(store: Store, key: str, action: Action, on_event: OnEvent) -> Entry | None:
    try:
        return store.get(key)
    except CorruptEntry as exc:
        on_event(StepEvent("warning", action.node, key, message=f"{exc}; evicted, rebuilding"))
        return None


class LocalCache:
    """The local store first: a key already there is ``cached``. Every success is recorded
    per node (what its key was made of), for ``plan explain`` and ``plan affected``."""

    def __init__(self, store: Store, inner: Executor, record: Recorder,
                 on_event: OnEvent, *, label: str = "", root: str | None = None) -> None:
        self.label = label  # the recipe file: logs are kept per project
        self.root = root  # the project's directory, as the records name it
        self.store = store
        self.inner = inner
        self.record = record
        self.on_event = on_event

    def execute(self, action: Action, deps: Mapping[NodeId, Entry]) -> ActionResult:
        t0 = time.monotonic()
        key = action.key(dep_outputs(deps))
        entry = _hit(self.store, key, action, self.on_event)
        node = str(action.node)
        if entry is not None:
            log = log_path(self.store, action.node, self.label)
            result = ActionResult(key, entry, "cached", time.monotonic() - t0, log=log)
            if self.store.recorded_key(node) == (key, self.root):
                return result  # recorded when it was built: the same components
        else:
            result = self.inner.execute(action, deps)
        self.store.record(node, self.record(action, key, deps))
        return result


class Publishing:
    """Builds under the store's per-key lock and publishes what the inner executor made.
    Another process may have built the key while we waited: that is a cache hit."""

    def __init__(self, store: Store, inner: Executor, on_event: OnEvent, *,
                 label: str = "") -> None:
        self.label = label  # the recipe file: logs are kept per project
        self.store = store
        self.inner = inner
        self.on_event = on_event

    def execute(self, action: Action, deps: Mapping[NodeId, Entry]) -> ActionResult:
        t0 = time.monotonic()
        key = action.key(dep_outputs(deps))
        self.on_event(StepEvent("started", action.node, key))
        with self.store.lock(key):
            entry = _hit(self.store, key, action, self.on_event)
            if entry is not None:
                log = log_path(self.store, action.node, self.label)
                return ActionResult(key, entry, "cached", time.monotonic() - t0, log=log)
            result = self.inner.execute(action, deps)
            self.store.publish(result.entry)
            return result


class Verified:
    """Checks each declared executable's ELF header against the target platform before the
    result is published (a wrong-architecture binary fails the step)."""

    def __init__(self, store: Store, inner: Executor,
                 platforms: Mapping[NodeId, Platform | None]) -> None:
        self.store = store
        self.inner = inner
        self.platforms = platforms

    def execute(self, action: Action, deps: Mapping[NodeId, Entry]) -> ActionResult:
        result = self.inner.execute(action, deps)
        platform = self.platforms.get(action.node)
        if platform is None or not action.executables:
            return result
        from crossplan.backends.elf import check_elf  # pyelftools: only with executables

        by_path = {f.path: f for f in result.entry.files}
        step = action.components.get("step")
        floor = libc_floor(step.get("libc") if isinstance(step, dict) else None)
        for rel in action.executables:
            f = by_path.get(rel)
            if f is not None and f.link is None:
                try:
                    check_elf(self.store.blob_path(f.digest), platform, name=rel,
                              glibc_floor=floor)
                except StepFailed as exc:
                    exc.log = result.log
                    raise
        return result


class ByKind:
    """Routes command actions and image actions to their executors."""

    def __init__(self, commands: Executor, images: Executor) -> None:
        self.commands = commands
        self.images = images

    def execute(self, action: Action, deps: Mapping[NodeId, Entry]) -> ActionResult:
        inner = self.images if action.kind == "image" else self.commands
        return inner.execute(action, deps)
