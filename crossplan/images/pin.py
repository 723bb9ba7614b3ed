"""An image step's key identity (its base pinned by digest, the backend's settings) as one
canonical JSON object in the node's components, and its fields read back as a structure."""

from __future__ import annotations

import json

__all__ = ["VCS_FIELDS", "base_pin", "identity_fields", "image_identity"]

# Git metadata an image is labelled with: part of the key (labels are bytes of the image),
# not a reason to call an image affected (every commit would be).
VCS_FIELDS = ("revision", "source")


def image_identity(**fields: object) -> str:
    """The identity string of an image step: ``fields`` as JSON with sorted keys."""
    return json.dumps(fields, sort_keys=True)


def identity_fields(identity: object) -> dict[str, object]:
    """The fields ``image_identity`` wrote; ``{}`` for anything else (a step's toolchain
    identity, or none)."""
    if not isinstance(identity, str) or not identity.startswith("{"):
        return {}
    try:
        fields = json.loads(identity)
    except ValueError:
        return {}
    return fields if isinstance(fields, dict) else {}


def base_pin(identity: object) -> str:
    """The base the identity names (``scratch``, ``name@sha256:...``, ``engine:<id>``,
    digests joined by commas), ``""`` when it names none."""
    base = identity_fields(identity).get("base")
    return base if isinstance(base, str) else ""
