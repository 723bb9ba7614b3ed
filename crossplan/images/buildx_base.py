"""The base a buildx image builds on, as the ELF check needs it (loader, glibc, libraries):
read from the local engine (``docker save``) or from the registry manifest the plan pinned,
the same bytes buildx builds on; by name only when neither can be read."""

from __future__ import annotations

import tempfile
from pathlib import Path

from crossplan.backends.elf_base import BaseRuntime
from crossplan.backends.oci.base import resolve_base
from crossplan.errors import CrossplanError
from crossplan.images.binaries import base_runtime, is_static_base
from crossplan.images.pin import base_pin
from crossplan.network import is_offline
from crossplan.planner.plan import PlannedNode
from crossplan.platforms import Platform
from crossplan.recipes.models import ImageStep

__all__ = ["buildx_base_runtimes"]


def _pin(pn: PlannedNode) -> str:
    """``engine:<image id>``, ``repo@sha256:...`` or ``scratch``: what buildx_pin found."""
    return base_pin(pn.components.get("toolchain"))


def buildx_base_runtimes(pn: PlannedNode, tmp: Path) -> dict[Platform, BaseRuntime | None]:
    """Per platform, the base as the loader sees it (None: unknown, only each binary's
    machine is checked). ``tmp``: where an engine image is saved while it is read."""
    step = pn.step
    assert isinstance(step, ImageStep)
    by_name = {p: base_runtime(step.base, None) for p in pn.platforms}
    pin = _pin(pn)
    if is_static_base(step.base) or pin in ("", "scratch"):
        return by_name
    try:
        if pin.startswith("engine:"):
            found = _from_engine(step.base, pn.platforms, tmp)
        elif "@sha256:" in pin and not is_offline():
            found = {p: (i, base_runtime(pin, i) if i else None)
                     for p, i in resolve_base(pin, pn.platforms).items()}
        else:
            return by_name
    except (CrossplanError, OSError):
        return by_name
    return {p: found[p][1] if found.get(p) and found[p][1] else by_name[p]
            for p in pn.platforms}


def _from_engine(base: str, platforms: tuple[Platform, ...],
                 tmp: Path) -> dict[Platform, tuple[object, BaseRuntime | None]]:
    """``docker save`` (an OCI layout archive since Docker 25) into ``tmp``, read per
    platform, deleted after."""
    from crossplan.backends.buildx.engine import Engine

    engine = Engine()
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.NamedTemporaryFile(dir=tmp, suffix=".tar") as f:
            try:
                for chunk in engine.client.images.get(base).save(named=True):
                    f.write(chunk)
            except Exception as exc:  # the SDK's errors: not found, daemon gone
                raise OSError(str(exc)) from exc
            f.flush()
            found = resolve_base(f"oci-archive:{f.name}", platforms)
            return {p: (i, base_runtime(base, i) if i else None) for p, i in found.items()}
    finally:
        engine.close()
