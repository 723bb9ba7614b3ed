"""A remote cache in a run: settings, a batched prefetch level by level, substitution, pushes.

Keys depend on deps' output digests, which an entry JSON in the remote already tells, so
the prefetch resolves the plan one level at a time with one batched, parallel look-up per
level (no blob downloaded yet), then downloads every hit's blobs in the background while
the scheduler starts. ``substitute`` hands a prefetched entry over (status
``substituted``), or asks the remote for keys only known once a dep was built locally.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal

from crossplan.cache.artifact import Artifact
from crossplan.cache.remote import MODES, Mode, RemoteCache, RemoteSettings
from crossplan.cache.signing import load_public_key, load_signing_key
from crossplan.cache.store import CorruptEntry, Entry, Store
from crossplan.errors import RecipeError
from crossplan.executors.events import OnEvent, StepEvent
from crossplan.executors.resolve import resolve_keys
from crossplan.executors.result import RunResult
from crossplan.planner.graph import ANY, NodeId
from crossplan.planner.plan import Plan
from crossplan.recipes.models import Recipe

__all__ = [
    "ENV_MODE",
    "ENV_REMOTE",
    "ENV_SIGNING_KEY",
    "RemoteRun",
    "pull_plan",
    "push_plan",
    "remote_lookup",
    "remote_settings",
]

ENV_REMOTE = "CROSSPLAN_CACHE_REMOTE"
ENV_MODE = "CROSSPLAN_CACHE_MODE"
ENV_SIGNING_KEY = "CROSSPLAN_CACHE_SIGNING_KEY"
# Where warnings about the registry itself (not one step) are reported.
REMOTE_NODE = NodeId("remote-cache", ANY)

PullStatus = Literal["local", "pulled", "missing", "failed", "unknown"]
PushStatus = Literal["pushed", "failed", "not built"]


def remote_settings(
    recipe: Recipe,
    *,
    remote: str | None = None,
    mode: str | None = None,
    environ: Mapping[str, str],
) -> RemoteSettings | None:
    """``--cache-remote``/``--cache-mode`` over ``CROSSPLAN_CACHE_*`` over ``[cache]``.

    None when no remote is set or the mode is ``off``."""
    cfg = recipe.cache
    url = remote if remote is not None else environ.get(ENV_REMOTE) or cfg.remote
    chosen = mode or environ.get(ENV_MODE) or cfg.mode
    if chosen not in MODES:
        raise RecipeError(
            f"unknown cache mode '{chosen}'", file=recipe.label,
            hint="use readwrite, read or off (--cache-mode, CROSSPLAN_CACHE_MODE, [cache] mode)",
        )
    the_mode: Mode = chosen
    if not url or the_mode == "off":
        return None
    signing = None
    key_path = environ.get(ENV_SIGNING_KEY) or cfg.signing_key
    if key_path and the_mode == "readwrite":
        signing = load_signing_key((recipe.root / key_path).expanduser())
    trusted = tuple(load_public_key(t, recipe.root) for t in cfg.trusted_keys)
    return RemoteSettings(url, the_mode, signing, trusted)


class RemoteRun:
    """One run's use of a remote cache: ``prefetch()``, then the scheduler's hooks."""

    def __init__(self, plan: Plan, cache: RemoteCache, on_event: OnEvent | None = None) -> None:
        self.plan = plan
        self.cache = cache
        self.store: Store = cache.store
        self._on_event = on_event
        self._node_of: dict[str, NodeId] = {}
        self.keys: dict[NodeId, str] = {}
        self.local: set[NodeId] = set()
        self.hits: dict[str, Artifact] = {}
        self._asked: set[str] = set()
        self._fetches: dict[str, Future[Entry | None]] = {}
        self._pushes: list[Future[bool]] = []
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="remote-run")
        self._lock = threading.Lock()
        self.warnings: list[str] = []
        self._closed = False
        cache.on_warning = self._warn

    @classmethod
    def start(
        cls, plan: Plan, store: Store, settings: RemoteSettings, on_event: OnEvent | None = None
    ) -> RemoteRun:
        """A RemoteRun over a RegistryClient, its prefetch done and downloads started."""
        run = cls(plan, RemoteCache(settings, store), on_event)
        run.prefetch()
        return run

    def _warn(self, key: str | None, message: str) -> None:
        node = self._node_of.get(key or "")
        with self._lock:
            self.warnings.append(f"{node}: {message}" if node else message)
        if self._on_event is not None:
            self._on_event(StepEvent("warning", node or REMOTE_NODE, key, message=message))

    # -- prefetch --------------------------------------------------------------------------
    def resolve(self) -> None:
        """Every key computable from local entries and remote entry JSONs, one batched
        look-up per level of the plan (linear in nodes + edges, plus the look-ups)."""
        graph = self.plan.graph
        outputs: dict[NodeId, Mapping[str, str]] = {}
        waiting = {n: len(pn.deps) for n, pn in self.plan.nodes.items()}
        ready = deque(n for n, w in waiting.items() if w == 0)

        def known(node: NodeId, digests: Mapping[str, str]) -> list[NodeId]:
            """Record ``node``'s outputs; the dependents whose keys are now computable."""
            outputs[node] = digests
            now = []
            for succ in graph.successors(node):
                waiting[succ] -= 1
                if waiting[succ] == 0:
                    now.append(succ)
            return now

        while ready and self.cache.readable:
            batch: dict[str, NodeId] = {}
            while ready:  # local entries settle at once; the rest wait for one look-up
                node = ready.popleft()
                pn = self.plan.nodes[node]
                key = pn.key({d: outputs[d] for d in pn.deps})
                self.keys[node] = key
                self._node_of[key] = node
                local = self._local(key)
                if local is not None:
                    self.local.add(node)
                    ready.extend(known(node, local.digests()))
                else:
                    batch[key] = node
            self._asked.update(batch)
            for key, art in self.cache.lookup_many(batch).items():
                if art is not None:
                    self.hits[key] = art
                    ready.extend(known(batch[key], art.entry.digests()))

    def prefetch(self) -> None:
        """``resolve()``, then download every hit's blobs in the background."""
        self.resolve()
        for key, art in self.hits.items():
            self._fetches[key] = self._pool.submit(self._fetch_one, art)

    def _fetch_one(self, art: Artifact) -> Entry | None:
        return self.cache.fetch_many([art])[art.key]

    def _local(self, key: str) -> Entry | None:
        try:
            return self.store.get(key, verify=False)
        except CorruptEntry:
            return None

    # -- used by the RemoteCached executor wrapper -----------------------------------------
    def substitute(self, key: str, node: NodeId) -> Entry | None:
        """A prefetched entry, or one more look-up."""
        self._node_of.setdefault(key, node)
        fut = self._fetches.get(key)
        if fut is not None:
            entry = fut.result()
        elif key in self._asked:
            return None  # asked during prefetch: a miss
        else:
            self._asked.add(key)
            art = self.cache.lookup(key)
            entry = self.cache.fetch_many([art])[key] if art is not None else None
        if entry is not None:
            self.store.publish(entry)
        return entry

    def after_build(self, key: str, node: NodeId, entry: Entry) -> None:
        """Push in the background (readwrite mode)."""
        self._node_of.setdefault(key, node)
        if self.cache.writable:
            with self._lock:
                self._pushes.append(self._pool.submit(self.cache.push, entry))

    # -- end of run ------------------------------------------------------------------------
    def finish(self, result: RunResult) -> RunResult:
        """Wait for pushes and downloads; publish fetched entries the run did not reach;
        add the warnings to ``result``."""
        self.close()
        return dataclasses.replace(result, warnings=(*result.warnings, *self.warnings))

    def fetched(self, key: str) -> Entry | None:
        """The prefetched entry for ``key`` once downloaded (None: not a hit, or it failed)."""
        fut = self._fetches.get(key)
        return fut.result() if fut is not None else None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for push in list(self._pushes):
            push.result()
        for fut in self._fetches.values():
            entry = fut.result()
            if entry is not None and self._local(entry.key) is None:
                self.store.publish(entry)
        self._pool.shutdown(wait=True)
        self.cache.close()


def _moved(entry: Entry) -> str:
    size = sum(f.size for f in entry.files)
    return f"{len(entry.files)} blob(s), {size / 1e6:.1f} MB"


def pull_plan(run: RemoteRun, on_event: OnEvent | None = None) -> dict[NodeId, PullStatus]:
    """``plan cache pull``: substitute every key of the plan the remote can resolve;
    ``on_event`` hears a ``phase`` event per node pulled (its blobs and bytes)."""
    run.prefetch()
    run.close()  # waits for the downloads and publishes what arrived
    out: dict[NodeId, PullStatus] = {}
    for node in run.plan.order:
        key = run.keys.get(node)
        if key is None:
            out[node] = "unknown"
        elif node in run.local:
            out[node] = "local"
        elif key in run.hits:
            got = run.fetched(key)
            out[node] = "pulled" if got is not None else "failed"
            if got is not None and on_event is not None:
                on_event(StepEvent("phase", node, key, message=f"pulled {_moved(got)}"))
        else:
            out[node] = "missing"
    return out


def push_plan(
    plan: Plan, cache: RemoteCache, on_event: OnEvent | None = None
) -> dict[NodeId, PushStatus]:
    """``plan cache push``: push every local entry of the plan's (computable) keys;
    ``on_event`` hears a ``phase`` event per node pushed (its blobs and bytes)."""
    entries: dict[NodeId, Entry] = {}
    for node, key in resolve_keys(plan, cache.store).items():
        if key is None:
            continue
        try:
            entry = cache.store.get(key)
        except CorruptEntry:
            entry = None
        if entry is not None:
            entries[node] = entry
    pushed = cache.push_many(entries.values())
    for node, entry in entries.items():
        if pushed.get(entry.key) and on_event is not None:
            on_event(StepEvent("phase", node, entry.key, message=f"pushed {_moved(entry)}"))
    return {
        node: ("not built" if node not in entries
               else "pushed" if pushed.get(entries[node].key) else "failed")
        for node in plan.order
    }



def remote_lookup(run: RemoteRun, node: NodeId) -> tuple[str | None, bool | None]:
    """(key, found remotely) of ``node`` for ``plan explain``: the key is resolved through
    local entries and remote entry JSONs; found is None when the remote cannot tell."""
    run.resolve()
    key = run.keys.get(node)
    if key is None:
        return None, None if not run.cache.readable else False
    if key in run.hits:
        return key, True
    if node in run.local:
        return key, run.cache.has(key)
    return key, False if run.cache.readable else None
