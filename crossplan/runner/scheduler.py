"""Execute a Plan: order the nodes, run independent ones in parallel through one Executor,
and report each node's outcome as events and a RunResult. What executing a node means
(local store, remote cache, sandbox, verification) is the executor's business."""

from __future__ import annotations

import heapq
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field

from crossplan.cache.store import Entry
from crossplan.errors import CrossplanError, EnvironmentProblem, StepFailed
from crossplan.executors.events import OnEvent, StepEvent
from crossplan.executors.protocol import Executor, Skip, dep_outputs
from crossplan.executors.result import RunResult, StepResult
from crossplan.executors.workdir import wait_discarded
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import Plan, PlannedNode

__all__ = ["Prepare", "execute_plan"]

Prepare = Callable[[PlannedNode, Mapping[NodeId, Entry]], None]


@dataclass
class _Ctx:
    executor: Executor
    on_event: OnEvent
    entries: dict[NodeId, Entry] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def execute_plan(
    plan: Plan,
    executor: Executor,
    *,
    jobs: int | None = None,
    keep_going: bool = False,
    on_event: OnEvent | None = None,
    prepare: Prepare | None = None,
) -> tuple[RunResult, dict[NodeId, Entry]]:
    """Run every node of ``plan`` through ``executor``; returns the result and each
    successful node's store entry. ``prepare(node, deps so far)`` hears of each node one of
    whose dependencies was just built, before that node is started (an image backend starts
    compressing the layers it can: those of a platform whose deps are all here, the last
    one's too, while the node waits for a worker and checks its inputs); it must return at
    once and never raise."""
    started = time.monotonic()
    ctx = _Ctx(executor, on_event or (lambda e: None))
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
    with _discarded_at_exit(), ThreadPoolExecutor(max_workers=workers) as pool:
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
                if prepare is not None and res.status == "built":
                    _prepare_dependents(ctx, plan, node, prepare)
    ordered = tuple(results[n] for n in plan.order)
    return RunResult(ordered, seconds=time.monotonic() - started), ctx.entries


def _prepare_dependents(ctx: _Ctx, plan: Plan, built: NodeId, prepare: Prepare) -> None:
    """Tell ``prepare`` of each dependent of ``built`` (none has started: a node starts once
    its last dependency has settled, after this), with the deps it has so far."""
    for succ in plan.graph.successors(built):
        pn = plan.nodes[succ]
        with ctx.lock:
            have = {d: ctx.entries[d] for d in pn.deps if d in ctx.entries}
        prepare(pn, have)


@contextmanager
def _discarded_at_exit() -> Iterator[None]:
    """A run returns once the work dirs its executors removed in the background are gone."""
    try:
        yield
    finally:
        wait_discarded()


def _dep_entries(ctx: _Ctx, pn: PlannedNode) -> dict[NodeId, Entry]:
    with ctx.lock:
        return {d: ctx.entries[d] for d in pn.deps}


def _run_node(ctx: _Ctx, pn: PlannedNode) -> StepResult:
    t0 = time.monotonic()
    deps = _dep_entries(ctx, pn)
    action = pn.action
    assert action is not None

    def key() -> str:  # for reports of nodes that did not finish (the executor has it)
        return action.key(dep_outputs(deps))

    try:
        res = ctx.executor.execute(action, deps)
    except Skip as exc:
        ctx.on_event(StepEvent("skipped", pn.id, key(), message=str(exc)))
        return StepResult(pn.id, "skipped", key(), time.monotonic() - t0, error=str(exc))
    except StepFailed as exc:
        secs = time.monotonic() - t0
        log = exc.log
        text = exc.render() + (f"\n--- log tail ---\n{exc.log_tail}" if exc.log_tail else "")
        ctx.on_event(StepEvent("failed", pn.id, key(), secs, log, text))
        return StepResult(pn.id, "failed", key(), secs, log=log, error=text)
    except EnvironmentProblem as exc:
        # Not the step's fault (a missing tool...): abort the run so the CLI exits 3.
        ctx.on_event(StepEvent("failed", pn.id, key(), time.monotonic() - t0, None, exc.render()))
        raise
    except CrossplanError as exc:
        secs = time.monotonic() - t0
        ctx.on_event(StepEvent("failed", pn.id, key(), secs, None, exc.render()))
        return StepResult(pn.id, "failed", key(), secs, error=exc.render())
    secs = time.monotonic() - t0
    with ctx.lock:
        ctx.entries[pn.id] = res.entry
    kind = "finished" if res.outcome == "built" else res.outcome
    ctx.on_event(StepEvent(kind, pn.id, res.key, secs, res.log))
    return StepResult(pn.id, res.outcome, res.key, secs, res.entry.digests(), res.log)
