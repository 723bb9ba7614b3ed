"""Content-addressed keys: blake3 over a canonical JSON encoding of a node's inputs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import blake3

from crossplan.recipes.models import COSMETIC_FIELDS, ImageStep, Step

__all__ = ["KEY_SCHEMA", "canonical", "final_key", "input_key", "step_fields"]

KEY_SCHEMA = 2  # 2: steps record `network` and how they ran (`sandbox`)

# Fields that don't change what a step produces for one platform: labels, scheduling,
# where inputs come from (their content is hashed instead), and publishing targets.
_NOT_IN_KEY = COSMETIC_FIELDS | {
    "deps", "platforms", "smoke", "smoke_expect", "src", "exclude", "emulate",
}
_IMAGE_NOT_IN_KEY = {"tags", "arch_tags", "backend"}


def canonical(value: Any) -> bytes:
    """Stable bytes: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def step_fields(step: Step) -> dict[str, Any]:
    """The step's definition as it enters the key (normalized, cosmetic fields dropped)."""
    exclude = set(_NOT_IN_KEY)
    if isinstance(step, ImageStep):
        exclude |= _IMAGE_NOT_IN_KEY
    data: dict[str, Any] = step.model_dump(mode="json", by_alias=True, exclude=exclude)
    return data


def final_key(components: Mapping[str, Any], dep_outputs: Mapping[str, Mapping[str, str]]) -> str:
    """The action key: static components plus each dependency's output digests (early cutoff)."""
    payload = {"components": components, "deps": dep_outputs}
    return blake3.blake3(canonical(payload)).hexdigest()


def input_key(components: Mapping[str, Any], dep_keys: Mapping[str, str]) -> str:
    """The input-addressed key: static components plus each dependency's input key."""
    payload = {"components": components, "input_deps": dep_keys}
    return blake3.blake3(canonical(payload)).hexdigest()
