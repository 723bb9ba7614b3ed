"""Typed events a run emits (step started/finished/cached/substituted/failed/skipped)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from crossplan.planner.graph import NodeId

__all__ = ["EventKind", "OnEvent", "StepEvent"]

EventKind = Literal[
    "started", "finished", "cached", "substituted", "checked", "failed", "skipped", "warning"
]


@dataclass(frozen=True)
class StepEvent:
    """One thing that happened to one node. ``seconds`` is the step's own duration."""

    kind: EventKind
    node: NodeId
    key: str | None = None
    seconds: float = 0.0
    log: Path | None = None
    message: str = ""


OnEvent = Callable[[StepEvent], None]
