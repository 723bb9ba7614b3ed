"""The executor protocol: ``execute(action, deps) -> ActionResult``. Host execution, image
backends, the local store, the remote cache and output verification all implement it and
wrap each other; ``api.run`` assembles the stack once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from crossplan.cache.store import Entry
from crossplan.planner.actions import Action
from crossplan.planner.graph import NodeId

__all__ = ["ActionResult", "Executor", "Outcome", "Skip", "dep_outputs"]

Outcome = Literal["built", "cached", "substituted", "checked"]


class Skip(Exception):
    """Raised by an executor that will not run this node (the run continues; its dependents
    are skipped too): e.g. ``--check`` of a node the store does not hold."""


@dataclass(frozen=True)
class ActionResult:
    """What executing an Action gave: its store entry (output digests and log), how it was
    obtained, the exit code of its commands and its duration."""

    key: str
    entry: Entry
    outcome: Outcome
    seconds: float
    exit_code: int = 0
    log: Path | None = None


class Executor(Protocol):
    """Runs (or finds) an Action given its dependencies' store entries.

    Raises StepFailed when the action ran and failed (exit 1: nothing of it is stored),
    EnvironmentProblem when it cannot run here (exit 3)."""

    def execute(self, action: Action, deps: Mapping[NodeId, Entry]) -> ActionResult: ...


def dep_outputs(deps: Mapping[NodeId, Entry]) -> dict[NodeId, dict[str, str]]:
    """Each dependency's output digests (path -> blake3), as keys hash them."""
    return {d: e.digests() for d, e in deps.items()}
