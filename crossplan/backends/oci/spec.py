"""What to build for one platform: base image, layers to add, and runtime config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crossplan.backends.oci.blobs import Blob
from crossplan.backends.oci.layers import LayerEntry

__all__ = ["BaseImage", "ImageSpec", "LayerSpec"]


@dataclass(frozen=True)
class BaseImage:
    """A resolved base for one platform: its config, its layers (fetched lazily), its pin."""

    config: Mapping[str, Any]  # the base's image config document
    layers: tuple[Blob, ...]  # compressed layer blobs, bottom first
    digest: str  # the platform manifest's digest
    name: str = ""  # where it came from: "oci:dir", "localhost:5000/base:1"
    pinned: str = ""  # reproducible reference: "localhost:5000/base@sha256:<index>"


@dataclass(frozen=True)
class LayerSpec:
    """One layer to add; ``created_by`` names the step and becomes the history entry."""

    entries: tuple[LayerEntry, ...]
    created_by: str
    comment: str = field(default="", compare=False)


@dataclass(frozen=True)
class ImageSpec:
    """Everything that goes into one platform's image. ``None`` keeps the base's value."""

    base: BaseImage | None = None  # None = scratch
    layers: Sequence[LayerSpec] = ()
    entrypoint: Sequence[str] | None = None  # setting it without cmd clears the base's Cmd
    cmd: Sequence[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # merged over the base's Env
    workdir: str | None = None
    user: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # merged over the base's
    expose: Sequence[str | int] = ()  # "8080", 8080 or "53/udp"
    created: int = 0  # SOURCE_DATE_EPOCH
