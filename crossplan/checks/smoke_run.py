"""``plan run --smoke``: run each built binary for its platform (natively or under qemu-user)
with the step's ``smoke`` args, check ``smoke_expect``, and record the result."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from crossplan.backends.smoke import run_binary
from crossplan.cache.store import Entry, Store
from crossplan.errors import CrossplanError
from crossplan.executors.result import RunResult, StepResult
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import Plan

__all__ = ["smoke_test"]


def _binary(entry: Entry) -> str | None:
    """The step's executable: the first output file with an exec bit."""
    for f in entry.files:
        if f.link is None and f.mode & 0o111:
            return f.path
    return None


def smoke_test(
    plan: Plan, store: Store, result: RunResult, entries: Mapping[NodeId, Entry]
) -> RunResult:
    steps: list[StepResult] = []
    for sr in result.steps:
        pn = plan.nodes.get(sr.node)
        entry = entries.get(sr.node)
        if (
            pn is None or entry is None or pn.platform is None or pn.step.kind == "image"
            or pn.step.smoke is None or sr.status == "failed"
        ):
            steps.append(sr)
            continue
        steps.append(_one(sr, pn.step.smoke, pn.step.smoke_expect, entry, store, plan))
    return dataclasses.replace(result, steps=tuple(steps))


def _one(
    sr: StepResult, args: tuple[str, ...], expect: str | None, entry: Entry, store: Store,
    plan: Plan,
) -> StepResult:
    rel = _binary(entry)
    if rel is None:
        return dataclasses.replace(
            sr, status="failed", smoke="no executable output to smoke-test",
            error=f"step '{sr.node}': smoke test: no executable among its outputs",
        )
    platform = plan.nodes[sr.node].platform
    assert platform is not None
    with tempfile.TemporaryDirectory(dir=store.root / "tmp") as tmp:
        binary = Path(tmp) / os.path.basename(rel)
        binary.write_bytes(store.blob_path(entry.digests()[rel]).read_bytes())
        binary.chmod(0o755)
        try:
            root = plan.facts.sysroots.get(sr.node) if plan.facts else None  # its own libs
            code, output = run_binary(binary, platform, args, build=plan.build_platform,
                                      target_root=Path(root.path) if root else None)
        except CrossplanError as exc:
            return dataclasses.replace(sr, status="failed", smoke=exc.render(), error=exc.render())
    first = output.strip().splitlines()[0] if output.strip() else ""
    if code != 0:
        msg = f"smoke test of {rel} for {platform} exited {code}: {output.strip()[-300:]}"
        return dataclasses.replace(sr, status="failed", smoke=msg, error=f"{sr.node}: {msg}")
    if expect is not None and expect not in output:
        msg = f"smoke test of {rel} for {platform}: expected {expect!r} in output, got {first!r}"
        return dataclasses.replace(sr, status="failed", smoke=msg, error=f"{sr.node}: {msg}")
    return dataclasses.replace(sr, smoke=f"ok: {first}")
