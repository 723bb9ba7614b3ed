"""``plan affected``: the nodes whose input keys differ from the plan at a git revision, or
from the last recorded successful run in the store, with what changed for each."""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossplan.cache.store import Store
from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.images.pin import VCS_FIELDS, identity_fields, image_identity
from crossplan.planner.affected import AffectedNode, NodeState, compare, snapshot
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import Plan

__all__ = ["Affected", "affected_since_plan", "affected_since_store", "checkout", "normalize"]

def normalize(kind: str, components: Mapping[str, Any]) -> Mapping[str, Any]:
    """Components as compared for affectedness: image identities without the git revision
    and origin stamped into their labels (they change with every commit; comparing them
    would mark every image affected by a README edit)."""
    fields = identity_fields(components.get("toolchain")) if kind == "image" else {}
    if not any(k in fields for k in VCS_FIELDS):
        return components
    kept = {k: v for k, v in fields.items() if k not in VCS_FIELDS}
    return {**components, "toolchain": image_identity(**kept)}


@dataclass(frozen=True)
class Affected:
    """What a change affects: the nodes to rebuild (in plan order), what changed for each,
    and what they were compared with (``baseline``)."""

    baseline: str  # "git <rev> (<commit>)" or "the last recorded run in <store>"
    nodes: tuple[AffectedNode, ...]
    removed: tuple[str, ...] = ()  # nodes of the baseline no longer in the plan
    total: int = 0  # nodes in the plan
    since: str | None = None
    commit: str | None = None

    @property
    def targets(self) -> list[NodeId]:
        """The affected nodes: ``plan.subplan(affected.targets)`` builds just them."""
        return [a.node for a in self.nodes]

    @property
    def steps(self) -> list[str]:
        """The affected step ids, sorted."""
        return sorted({a.node.step for a in self.nodes})

    def get(self, node: NodeId | str) -> AffectedNode | None:
        """The entry of ``node`` (a NodeId or ``str(node)``), None when unaffected."""
        for a in self.nodes:
            if a.node == node or str(a.node) == node:
                return a
        return None

    def as_json(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline, "since": self.since, "commit": self.commit,
            "total": self.total, "affected": [a.as_json() for a in self.nodes],
            "steps": self.steps, "removed": list(self.removed),
        }


def affected_since_plan(plan: Plan, before: Plan | None, baseline: str, **kw: Any) -> Affected:
    """Compare ``plan`` with ``before`` (the same recipe at another revision; None: absent)."""
    snap = snapshot(before, normalize) if before is not None else {}
    nodes, removed = compare(plan, snap, normalize)
    return Affected(baseline, tuple(nodes), tuple(removed), len(plan.nodes), **kw)


def affected_since_store(plan: Plan, store: Store) -> Affected:
    """Compare ``plan`` with the components recorded by the last successful run of each node
    (a node never recorded, or recorded for another project directory, is new)."""
    root = str(plan.recipe.root.resolve())
    snap: dict[str, NodeState] = {}
    pending = [str(n) for n in plan.nodes]
    while pending:  # the plan's nodes, and any recorded deps they no longer have
        name = pending.pop()
        if name in snap:
            continue
        rec = store.last_record(name)
        if rec is None or rec.get("root", root) != root or "components" not in rec:
            continue
        comps = rec["components"]
        state = NodeState(
            normalize(str(comps.get("kind", "")), comps), rec.get("inputs", {}),
            tuple(sorted(rec.get("deps", {}))),
        )
        snap[name] = state
        pending += [d for d in state.deps if d not in snap]
    nodes, removed = compare(plan, snap, normalize)
    return Affected(f"the last recorded run in {store.root}", tuple(nodes), tuple(removed),
                    len(plan.nodes))


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False,
            timeout=60,
        )
    except OSError as exc:
        raise EnvironmentProblem(f"cannot run git: {exc}", hint="install git") from exc


@contextmanager
def checkout(root: Path, rev: str) -> Iterator[tuple[Path | None, str]]:
    """The directory ``root`` as of git ``rev``, extracted (``git archive``) into a temporary
    directory: yields (that directory, or None when ``root`` did not exist then; the commit).
    Nothing of the repository changes (no worktree, no hooks)."""
    top = _git(root, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise RecipeError(
            f"--since {rev}: {root} is not inside a git repository",
            hint="run without --since to compare with the last recorded run instead",
        )
    found = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if found.returncode != 0:
        raise RecipeError(
            f"--since {rev}: unknown git revision",
            hint="name a commit, branch or tag (e.g. origin/main); `git fetch` may be needed",
        )
    commit = found.stdout.strip()
    toplevel = Path(top.stdout.strip()).resolve()
    rel = root.resolve().relative_to(toplevel).as_posix()
    tree = commit if rel == "." else f"{commit}:{rel}"
    if _git(toplevel, "cat-file", "-e", tree).returncode != 0:
        yield None, commit
        return
    with tempfile.TemporaryDirectory(prefix="crossplan-since-") as tmp:
        _extract(toplevel, tree, Path(tmp))
        yield Path(tmp), commit


def _extract(toplevel: Path, tree: str, dest: Path) -> None:
    # From the top level: in a subdirectory, git archive limits itself to that directory.
    proc = subprocess.Popen(
        ["git", "-C", str(toplevel), "archive", "--format=tar", tree],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    broken: tarfile.TarError | None = None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            tar.extractall(dest, filter="tar")
    except tarfile.TarError as exc:
        broken = exc
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        code = proc.wait()
    if code != 0 or broken is not None:
        raise EnvironmentProblem(f"git archive {tree} failed: {err.strip() or broken}")

