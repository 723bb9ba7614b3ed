"""Typed events a run emits (step started/finished/cached/substituted/failed/skipped) and,
when asked for, the phases a running step goes through (``phase``: staging, compiling,
running, assembling..., in ``message``) and what its commands print (``output``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # annotations only: `plan --help` imports this module, not the planner
    from crossplan.planner.graph import NodeId

__all__ = ["EventKind", "OnEvent", "StepEvent"]

EventKind = Literal[
    "started", "finished", "cached", "substituted", "checked", "failed", "skipped", "warning",
    "phase", "output",
]


@dataclass(frozen=True)
class StepEvent:
    """One thing that happened to one node. ``seconds`` is the step's own duration; for a
    ``phase`` event, ``message`` is the phase (``staging``, ``compiling``, ``running``,
    ``assembling``, ``publishing``, ``pushing``, ``published``; a detail may follow after
    ``: ``; ``RunOptions.phases``); for an ``output`` event (``RunOptions.stream_logs``), one
    line of the step's log."""

    kind: EventKind
    node: NodeId
    key: str | None = None
    seconds: float = 0.0
    log: Path | None = None
    message: str = ""


OnEvent = Callable[[StepEvent], None]
