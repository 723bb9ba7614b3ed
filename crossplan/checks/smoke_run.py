"""``plan run --smoke``: run each built binary for its platform (here, natively or under
qemu-user, or on a worker of the target's ISA with ``--executor remote``) with the step's
``smoke`` args, check ``smoke_expect``, and record the result."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from crossplan.backends.elf import read_elf
from crossplan.backends.smoke import run_binary
from crossplan.cache.store import Entry, Store
from crossplan.errors import CrossplanError
from crossplan.executors.protocol import ActionResult
from crossplan.executors.result import RunResult, StepResult
from crossplan.planner.actions import Action
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import Plan
from crossplan.planner.smoke import SMOKE_CODE, SMOKE_OUT, smoke_action
from crossplan.platforms import Platform

__all__ = ["RunAction", "smoke_test"]

# Executes an Action with its deps' entries: a REAPI executor's ``execute``.
RunAction = Callable[[Action, Mapping[NodeId, Entry]], ActionResult]


def _binary(entry: Entry) -> str | None:
    """The step's executable: the first output file with an exec bit."""
    for f in entry.files:
        if f.link is None and f.mode & 0o111:
            return f.path
    return None


def smoke_test(
    plan: Plan, store: Store, result: RunResult, entries: Mapping[NodeId, Entry],
    remote: RunAction | None = None,
) -> RunResult:
    """``remote``: run static binaries as Actions there (on the target's ISA); dynamically
    linked ones always run here, against their own sysroot or the cross libc: a worker's
    libc is not the one the image will have."""
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
        steps.append(_one(sr, pn.step.smoke, pn.step.smoke_expect, entry, store, plan, remote))
    return dataclasses.replace(result, steps=tuple(steps))


def _one(
    sr: StepResult, args: tuple[str, ...], expect: str | None, entry: Entry, store: Store,
    plan: Plan, remote: RunAction | None,
) -> StepResult:
    rel = _binary(entry)
    if rel is None:
        return dataclasses.replace(
            sr, status="failed", smoke="no executable output to smoke-test",
            error=f"step '{sr.node}': smoke test: no executable among its outputs",
        )
    platform = plan.nodes[sr.node].platform
    assert platform is not None
    where = ""
    try:
        blob = store.blob_path(entry.digests()[rel])
        if remote is not None and _static(blob):
            code, output, where = _remote(remote, sr.node, platform, rel, args, entry, store)
        else:
            code, output = _here(plan, sr.node, platform, rel, args, blob, store)
    except CrossplanError as exc:
        return dataclasses.replace(sr, status="failed", smoke=exc.render(), error=exc.render())
    first = output.strip().splitlines()[0] if output.strip() else ""
    if code != 0:
        msg = f"smoke test of {rel} for {platform} exited {code}: {output.strip()[-300:]}"
        return dataclasses.replace(sr, status="failed", smoke=msg, error=f"{sr.node}: {msg}")
    if expect is not None and expect not in output:
        msg = f"smoke test of {rel} for {platform}: expected {expect!r} in output, got {first!r}"
        return dataclasses.replace(sr, status="failed", smoke=msg, error=f"{sr.node}: {msg}")
    return dataclasses.replace(sr, smoke=f"ok: {first}{where}")


def _static(blob: Path) -> bool:
    """A statically linked ELF executable (what a worker of its ISA can run as it is)."""
    try:
        return read_elf(blob).interpreter is None
    except (ValueError, OSError):
        return False


def _here(
    plan: Plan, node: NodeId, platform: Platform, rel: str, args: tuple[str, ...], blob: Path,
    store: Store,
) -> tuple[int, str]:
    with tempfile.TemporaryDirectory(dir=store.root / "tmp") as tmp:
        binary = Path(tmp) / os.path.basename(rel)
        binary.write_bytes(blob.read_bytes())
        binary.chmod(0o755)
        root = plan.facts.sysroots.get(node) if plan.facts else None  # its own libs
        return run_binary(binary, platform, args, build=plan.build_platform,
                          target_root=Path(root.path) if root else None)


def _remote(
    remote: RunAction, node: NodeId, platform: Platform, rel: str, args: tuple[str, ...],
    entry: Entry, store: Store,
) -> tuple[int, str, str]:
    """(exit code, output, " on <worker>") of the binary run as an Action."""
    done = remote(smoke_action(node, platform, rel, args), {node: entry})
    files = done.entry.digests()
    output = store.blob_path(files[SMOKE_OUT]).read_bytes().decode(errors="replace")
    code = int(store.blob_path(files[SMOKE_CODE]).read_text().strip() or "255")
    worker = str(dict(done.entry.meta.get("remote", {})).get("worker") or "")
    return code, output, f" (on {worker})" if worker else ""
