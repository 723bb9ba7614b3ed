"""Check a base image before building: every target platform must exist (engine or registry)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from crossplan.backends.buildx.engine import Engine
from crossplan.backends.oci.descriptor import platform_from_json, sha256_digest
from crossplan.backends.oci.mediatypes import INDEX_TYPES
from crossplan.backends.oci.reference import Reference, is_loopback
from crossplan.backends.oci.registry import RegistryClient
from crossplan.errors import EnvironmentProblem
from crossplan.platforms import Platform

__all__ = ["BaseCheck", "check_base", "registry_platforms"]


@dataclass(frozen=True)
class BaseCheck:
    """Where the base was found and its identity (this enters the image key)."""

    ref: str
    where: str  # scratch | engine | registry
    pin: str


def registry_platforms(ref: str) -> tuple[str, set[Platform]] | None:
    """(index or manifest digest, platforms) of ``ref`` in its registry; None if absent."""
    parsed = Reference.parse(ref)
    with RegistryClient(parsed.registry, insecure=is_loopback(parsed.registry)) as reg:
        found = reg.get_manifest(parsed.repository, parsed.ref)
        if found is None:
            return None
        data, media_type = found
        doc = json.loads(data)
        plats: set[Platform] = set()
        if media_type in INDEX_TYPES or "manifests" in doc:
            for m in doc.get("manifests", []):
                p = m.get("platform")
                if p and p.get("architecture") not in (None, "unknown"):
                    plats.add(platform_from_json(p))
        else:
            config = json.loads(reg.get_blob(parsed.repository, doc["config"]["digest"]))
            plats.add(platform_from_json(config))
    return sha256_digest(data), plats


def check_base(
    base: str, platforms: Sequence[Platform], engine: Engine, *, step: str, file: str | None = None
) -> BaseCheck:
    """Find ``base`` in the engine (what buildx's docker driver uses first), else in its
    registry; raise EnvironmentProblem (exit 3) listing the platforms it lacks."""
    if base.strip() == "scratch":
        return BaseCheck(base, "scratch", "scratch")
    image_id = engine.image_id(base)
    if image_id is not None:
        missing = [p for p in platforms if not engine.has_platform(base, p)]
        if missing:
            raise _lacks(base, "the local engine image", missing, platforms, step, file)
        return BaseCheck(base, "engine", f"engine:{image_id}")
    found = registry_platforms(base)
    if found is None:
        raise EnvironmentProblem(
            f"base image {base} is neither in the local engine nor in its registry",
            step=step, file=file,
            hint=f"build or pull it first (`docker image ls {base}`), or fix `base`",
        )
    digest, have = found
    missing = [p for p in platforms if p not in have]
    if missing:
        raise _lacks(base, "the registry's image", missing, platforms, step, file,
                     have=sorted(have))
    return BaseCheck(base, "registry", f"{Reference.parse(base).name}@{digest}")


def _lacks(
    base: str, what: str, missing: list[Platform], wanted: Sequence[Platform], step: str,
    file: str | None, have: list[Platform] | None = None,
) -> EnvironmentProblem:
    names = ", ".join(str(p) for p in missing)
    has = f" (it has {', '.join(str(p) for p in have)})" if have is not None else ""
    plats = ",".join(str(p) for p in wanted)
    return EnvironmentProblem(
        f"base image {base}: {what} lacks {names}{has}",
        step=step, file=file,
        hint=f"rebuild the base for every target (`docker buildx build --platform {plats} ...`),"
        f" pick a multi-platform base, or drop {names} from the platforms",
    )
