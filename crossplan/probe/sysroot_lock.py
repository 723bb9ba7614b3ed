"""``plan lock`` for sysroots: every (sysroot, architecture) the plan builds against is
resolved into sysroots.lock (all of them again with ``--update``), changes listed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from crossplan.planner.graph import ANY
from crossplan.planner.plan import expand_for, target_platforms
from crossplan.platforms import Platform
from crossplan.probe.sysroots import LOCK_NAME, Say, provider_for, read_lock
from crossplan.recipes.models import Recipe

__all__ = ["lock_sysroots"]


def _used(recipe: Recipe) -> list[tuple[str, Platform]]:
    """(sysroot, platform) of every node built against a sysroot, one per architecture."""
    out: dict[tuple[str, str], tuple[str, Platform]] = {}
    for n in expand_for(recipe, target_platforms(recipe, None)):
        name = getattr(recipe.steps[n.step], "sysroot", None)
        if name and n.platform != ANY:
            plat = Platform.parse(n.platform)
            out.setdefault((name, str(plat)), (name, plat))
    return [out[k] for k in sorted(out)]


def _versions(lock: Mapping[str, object], name: str, arch: str) -> dict[str, str]:
    roots = lock.get("sysroots")
    entry = roots.get(name) if isinstance(roots, dict) else None
    arches = entry.get("arches") if isinstance(entry, dict) else None
    pkgs = arches.get(arch) if isinstance(arches, dict) else None
    return {str(p["name"]): str(p["version"]) for p in pkgs or [] if isinstance(p, dict)}


def lock_sysroots(
    recipe: Recipe, store_dir: Path, environ: Mapping[str, str], *, update: bool = False,
    say: Say = lambda m: None,
) -> list[str]:
    """Lock every sysroot the plan uses; one line per (sysroot, architecture) saying what
    changed. ``update`` drops their entries first, so they are resolved again."""
    used = _used(recipe)
    if not used:
        return []
    path = recipe.root / LOCK_NAME
    before = read_lock(path)
    if update and path.is_file():
        fresh = dict(before)
        fresh["sysroots"] = {}
        path.write_text(json.dumps(fresh, indent=2, sort_keys=True) + "\n")
    provide = provider_for(recipe, store_dir, environ, say)
    lines = []
    for name, plat in used:
        fact = provide(name, plat)
        old = _versions(before, name, fact.arch)
        new = {p.name: p.version for p in fact.packages}
        if not old:
            what = "locked"
        elif old == new:
            what = "unchanged"
        else:
            moved = [f"{k} {old.get(k, '-')} -> {new.get(k, '-')}"
                     for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
            what = "changed: " + ", ".join(moved)
        lines.append(f"sysroot '{name}' {fact.arch}: {len(new)} package(s), {what}")
    return lines
