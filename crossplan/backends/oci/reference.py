"""Image references (``localhost:5000/demo/hello:1.0``, ``alpine@sha256:...``): the pure
parser lives in the leaf module ``crossplan.imageref`` (recipes validate tags with it);
re-exported here for the OCI client and its users."""

from __future__ import annotations

from crossplan.imageref import DOCKER_HUB, Reference, is_loopback, parse_tag_reference

__all__ = ["DOCKER_HUB", "Reference", "is_loopback", "parse_tag_reference"]
