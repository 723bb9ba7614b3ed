"""What a run returns: per-node statuses, keys, timings and outputs, plus image digests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from crossplan.planner.graph import NodeId

__all__ = ["ImageResult", "RunResult", "Status", "StepResult"]

Status = Literal["built", "cached", "substituted", "checked", "failed", "skipped"]


@dataclass(frozen=True)
class StepResult:
    """What happened to one node: its status, action key, duration, outputs (path -> blake3
    digest, in the store), log and error."""

    node: NodeId
    status: Status
    key: str | None
    seconds: float
    outputs: dict[str, str] = field(default_factory=dict)
    log: Path | None = None
    error: str | None = None
    smoke: str | None = None

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.node.step,
            "platform": self.node.platform,
            "key": self.key,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "outputs": self.outputs,
        }
        if self.log:
            d["log"] = str(self.log)
        if self.error:
            d["error"] = self.error
        if self.smoke is not None:
            d["smoke"] = self.smoke
        return d


@dataclass(frozen=True)
class ImageResult:
    """A built image step: its index digest, each platform's manifest digest, where it was
    written (``--output``) and pushed."""

    step: str
    index_digest: str
    manifests: dict[str, str]  # platform -> manifest digest
    layout: Path | None = None
    pushed: tuple[str, ...] = ()
    up_to_date: bool = False
    notes: tuple[str, ...] = ()
    # platform -> "kind digest" of each attestation attached (sbom, provenance, signature)
    attestations: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "attestations": {p: list(a) for p, a in self.attestations.items()},
            "step": self.step,
            "index_digest": self.index_digest,
            "manifests": self.manifests,
            "layout": str(self.layout) if self.layout else None,
            "pushed": list(self.pushed),
            "up_to_date": self.up_to_date,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class RunResult:
    """What a run returns: a StepResult per node in plan order, the images, and warnings."""

    steps: tuple[StepResult, ...]
    images: tuple[ImageResult, ...] = ()
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(s.status not in ("failed", "skipped") for s in self.steps)

    def by_status(self, status: Status) -> list[StepResult]:
        return [s for s in self.steps if s.status == status]

    def step(self, step: str, platform: str = "any") -> StepResult:
        """The result of (step, platform); ``any`` for images and platform-independent steps."""
        for s in self.steps:
            if s.node.step == step and s.node.platform == platform:
                return s
        raise KeyError(f"{step}@{platform}")

    @property
    def artifacts(self) -> dict[NodeId, dict[str, str]]:
        """Each successful node's outputs (path -> blake3 digest); ``RunOptions(export=DIR)``
        copies them out of the store to DIR/<step>/<os>_<arch>/."""
        return {s.node: dict(s.outputs) for s in self.steps if s.key and s.status not in (
            "failed", "skipped")}

    def image(self, step: str) -> ImageResult:
        """The image built by ``step``."""
        for i in self.images:
            if i.step == step:
                return i
        raise KeyError(step)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "steps": [s.as_json() for s in self.steps],
            "images": [i.as_json() for i in self.images],
            "warnings": list(self.warnings),
        }
