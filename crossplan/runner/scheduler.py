"""Execute a Plan: for each node in dependency order, in parallel where independent:
local store hit? -> substitute? -> else build in a hermetic work dir -> verify -> publish."""

from __future__ import annotations

import heapq
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from crossplan.backends.host import base_env, log_tail, run_commands
from crossplan.backends.toolchains.base import BuildAction
from crossplan.cache.store import CorruptEntry, Entry, Store
from crossplan.errors import CrossplanError, EnvironmentProblem, StepFailed
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import ENV_ALLOWLIST, Plan, PlannedNode
from crossplan.recipes.workspace import dep_dir
from crossplan.runner.events import OnEvent, StepEvent
from crossplan.runner.result import RunResult, Status, StepResult
from crossplan.runner.workdir import collect_outputs, new_workdir, populate

__all__ = ["ActionFactory", "Substituter", "execute_plan"]

# (planned node, work dir, deps' entries) -> what to run. Compile/image kinds plug in here.
ActionFactory = Callable[[PlannedNode, Path, Mapping[NodeId, Entry]], BuildAction]
# key, node -> Entry put into the store from a remote cache, or None.
Substituter = Callable[[str, PlannedNode], Entry | None]
# node, entry -> verify the produced files (ELF machine etc.); raise StepFailed.
Verifier = Callable[[PlannedNode, Path, BuildAction], None]


def _no_verify(node: PlannedNode, workdir: Path, action: BuildAction) -> None:
    return None


@dataclass
class _Ctx:
    plan: Plan
    store: Store
    actions: ActionFactory
    environ: Mapping[str, str]
    on_event: OnEvent
    substitute: Substituter | None
    verify: Verifier
    after_build: Callable[[str, PlannedNode, Entry], None] | None
    entries: dict[NodeId, Entry] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def execute_plan(
    plan: Plan,
    store: Store,
    *,
    actions: ActionFactory,
    jobs: int | None = None,
    keep_going: bool = False,
    environ: Mapping[str, str] | None = None,
    on_event: OnEvent | None = None,
    substitute: Substituter | None = None,
    verify: Verifier = _no_verify,
    after_build: Callable[[str, PlannedNode, Entry], None] | None = None,
) -> tuple[RunResult, dict[NodeId, Entry]]:
    """Run every node of ``plan``; returns the result and each successful node's entry."""
    started = time.monotonic()
    ctx = _Ctx(
        plan, store, actions, os.environ if environ is None else environ,
        on_event or (lambda e: None), substitute, verify, after_build,
    )
    results: dict[NodeId, StepResult] = {}
    graph = plan.graph
    # Ready nodes in plan order; a node becomes ready when its last dependency settles.
    # (Linear in nodes + edges: a fully cached 10,000-node plan must not rescan the plan
    # after every completion.)
    rank = {n: i for i, n in enumerate(plan.order)}
    waiting = {n: graph.in_degree(n) for n in plan.order}
    ready = [(rank[n], n) for n in plan.order if waiting[n] == 0]
    heapq.heapify(ready)

    def settle(node: NodeId, res: StepResult) -> None:
        results[node] = res
        for succ in graph.successors(node):
            waiting[succ] -= 1
            if waiting[succ] == 0:
                heapq.heappush(ready, (rank[succ], succ))

    failed_any = False
    workers = max(1, jobs or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        running: dict[Future[StepResult], NodeId] = {}
        while ready or running:
            # Submit no more than `workers`: a queued node would still run after a failure
            # that should have stopped the run (no --keep-going).
            while ready and len(running) < workers:
                _, node = heapq.heappop(ready)
                preds = list(graph.predecessors(node))
                dep_failed = any(results[p].status in ("failed", "skipped") for p in preds)
                if dep_failed or (failed_any and not keep_going):
                    why = "a dependency failed" if dep_failed else "stopped"
                    settle(node, StepResult(node, "skipped", None, 0.0, error=why))
                    ctx.on_event(StepEvent("skipped", node))
                    continue
                running[pool.submit(_run_node, ctx, plan.nodes[node])] = node
            if not running:
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: rank[running[f]]):
                node = running.pop(fut)
                res = fut.result()
                if res.status == "failed":
                    failed_any = True
                settle(node, res)
    ordered = tuple(results[n] for n in plan.order)
    return RunResult(ordered, seconds=time.monotonic() - started), ctx.entries


def _dep_entries(ctx: _Ctx, pn: PlannedNode) -> dict[NodeId, Entry]:
    with ctx.lock:
        return {d: ctx.entries[d] for d in pn.deps}


def _run_node(ctx: _Ctx, pn: PlannedNode) -> StepResult:
    t0 = time.monotonic()
    deps = _dep_entries(ctx, pn)
    key = pn.key({d: e.digests() for d, e in deps.items()})
    try:
        status: Status
        entry, status = _lookup(ctx, key, pn)
        if entry is None:
            ctx.on_event(StepEvent("started", pn.id, key))
            with ctx.store.lock(key):
                # Another process may have built it while we waited: that is a cache hit.
                entry, status = _lookup(ctx, key, pn, remote=False)
                if entry is None:
                    entry = _build(ctx, pn, key, deps)
                    status = "built"
                    if ctx.after_build is not None:
                        ctx.after_build(key, pn, entry)
    except StepFailed as exc:
        secs = time.monotonic() - t0
        log = _log_path(ctx.store, pn)
        text = exc.render() + (f"\n--- log tail ---\n{exc.log_tail}" if exc.log_tail else "")
        ctx.on_event(StepEvent("failed", pn.id, key, secs, log, text))
        return StepResult(pn.id, "failed", key, secs, log=log, error=text)
    except EnvironmentProblem as exc:
        # Not the step's fault (a missing tool...): abort the run so the CLI exits 3.
        ctx.on_event(StepEvent("failed", pn.id, key, time.monotonic() - t0, None, exc.render()))
        raise
    except CrossplanError as exc:
        secs = time.monotonic() - t0
        ctx.on_event(StepEvent("failed", pn.id, key, secs, None, exc.render()))
        return StepResult(pn.id, "failed", key, secs, error=exc.render())
    secs = time.monotonic() - t0
    with ctx.lock:
        ctx.entries[pn.id] = entry
    _record(ctx, pn, key, deps)
    kind = "finished" if status == "built" else status
    ctx.on_event(StepEvent(kind, pn.id, key, secs, _log_path(ctx.store, pn)))
    return StepResult(pn.id, status, key, secs, entry.digests(), _log_path(ctx.store, pn))


def _lookup(
    ctx: _Ctx, key: str, pn: PlannedNode, *, remote: bool = True
) -> tuple[Entry | None, Status]:
    try:
        entry = ctx.store.get(key)
    except CorruptEntry as exc:
        ctx.on_event(StepEvent("warning", pn.id, key, message=f"{exc}; evicted, rebuilding"))
        entry = None
    if entry is not None:
        return entry, "cached"
    if remote and ctx.substitute is not None:
        sub = ctx.substitute(key, pn)
        if sub is not None:
            return sub, "substituted"
    return None, "built"


def _log_path(store: Store, pn: PlannedNode) -> Path:
    return store.root / "logs" / (str(pn.id).replace("/", "_").replace("@", "-") + ".log")


def _build(ctx: _Ctx, pn: PlannedNode, key: str, deps: Mapping[NodeId, Entry]) -> Entry:
    t0 = time.monotonic()
    workdir = new_workdir(ctx.store, str(pn.id))
    log = workdir / ".crossplan.log"
    try:
        if pn.platform is not None or pn.step.kind != "image":
            recipe = ctx.plan.recipe
            by_dir = {dep_dir(recipe, pn.id.step, d.step): e for d, e in deps.items()}
            populate(workdir, pn.inputs, by_dir, ctx.store)
        action = ctx.actions(pn, workdir, deps)
        for rel, text in action.files.items():
            (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
            (workdir / rel).write_text(text)
        env = base_env(
            workdir=workdir, target=pn.platform, build=ctx.plan.build_platform,
            source_date_epoch=ctx.plan.source_date_epoch, host_env=ctx.environ,
            allowlist=ENV_ALLOWLIST, extra=action.env,
        )
        log.touch()
        code = run_commands(action.commands, cwd=workdir, env=env, log=log, step=str(pn.id))
        shutil.copyfile(log, _log_path(ctx.store, pn))
        if code != 0:
            raise StepFailed(
                f"command exited with status {code}", step=str(pn.id), file=ctx.plan.recipe.label,
                log_tail=log_tail(log),
                hint=f"full log: {_log_path(ctx.store, pn)}",
            )
        ctx.verify(pn, workdir, action)
        files = collect_outputs(workdir, action.outputs, ctx.store, step=str(pn.id))
        log_digest = ctx.store.put_bytes(log.read_bytes())
        entry = Entry(key, str(pn.id), files, log_digest, time.monotonic() - t0, time.time(), {})
        ctx.store.publish(entry)
        return entry
    except EnvironmentProblem:
        raise
    except OSError as exc:
        raise StepFailed(f"{exc}", step=str(pn.id)) from exc
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _record(ctx: _Ctx, pn: PlannedNode, key: str, deps: Mapping[NodeId, Entry]) -> None:
    data: dict[str, Any] = {
        "key": key,
        "components": dict(pn.components),
        "inputs": pn.inputs.as_map() if pn.inputs else {},
        "deps": {str(d): e.digests() for d, e in deps.items()},
        "root": str(ctx.plan.recipe.root.resolve()),  # records are per node id, in one store
        "time": time.time(),
    }
    ctx.store.record(str(pn.id), data)


def descendants(plan: Plan, node: NodeId) -> set[NodeId]:
    return set(nx.descendants(plan.graph, node))
