"""``plan.lock``: every registry base (and toolchain image) of a recipe resolved to its
index digest and one manifest digest per platform; read, written (canonical JSON, so the
file diffs cleanly) and compared (what ``plan lock --update`` reports)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossplan.errors import RecipeError

__all__ = ["LOCK_NAME", "Change", "LockFile", "Locked", "diff", "read_lock", "write_lock"]

LOCK_NAME = "plan.lock"
VERSION = 1


@dataclass(frozen=True)
class Locked:
    """One image reference as resolved: the digest it named and each platform's manifest."""

    digest: str
    platforms: Mapping[str, str]  # "linux/arm64" -> manifest digest

    def as_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "platforms": dict(sorted(self.platforms.items()))}


@dataclass(frozen=True)
class LockFile:
    bases: Mapping[str, Locked] = field(default_factory=dict)  # as the recipe writes them
    toolchain_images: Mapping[str, Locked] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"version": VERSION,
                "bases": {k: v.as_json() for k, v in sorted(self.bases.items())},
                "toolchain_images": {k: v.as_json()
                                     for k, v in sorted(self.toolchain_images.items())}}


@dataclass(frozen=True)
class Change:
    """One line of ``plan lock --update``: what happened to (image, platform)."""

    kind: str  # base | toolchain_image
    image: str
    platform: str | None  # None: the image as a whole (its index digest)
    change: str  # added | removed | changed | unchanged
    old: str | None
    new: str | None

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "image": self.image, "platform": self.platform,
                "change": self.change, "old": self.old, "new": self.new}


def _entries(doc: Mapping[str, Any], name: str, path: Path) -> dict[str, Locked]:
    out = {}
    for ref, e in (doc.get(name) or {}).items():
        if not isinstance(e, dict) or not isinstance(e.get("digest"), str):
            raise RecipeError(f"{path}: entry '{ref}' has no digest",
                              hint="regenerate it: plan lock --update")
        out[str(ref)] = Locked(e["digest"], {str(k): str(v) for k, v in
                                             (e.get("platforms") or {}).items()})
    return out


def read_lock(path: Path) -> LockFile | None:
    """The lock at ``path``; None when there is none. A broken file is a RecipeError."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RecipeError(f"{path}: not a readable lock file ({exc})",
                          hint="regenerate it: plan lock --update") from None
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        raise RecipeError(f"{path}: unknown lock file version {doc.get('version')!r}"
                          if isinstance(doc, dict) else f"{path}: not a lock file",
                          hint="regenerate it: plan lock --update")
    return LockFile(_entries(doc, "bases", path), _entries(doc, "toolchain_images", path))


def write_lock(path: Path, lock: LockFile) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(lock.as_json(), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def diff(old: LockFile | None, new: LockFile) -> list[Change]:
    """Every image and platform of either lock, with what changed."""
    out: list[Change] = []
    for kind in ("bases", "toolchain_images"):
        before: Mapping[str, Locked] = getattr(old, kind) if old else {}
        after: Mapping[str, Locked] = getattr(new, kind)
        label = "base" if kind == "bases" else "toolchain_image"
        for ref in sorted(set(before) | set(after)):
            a, b = before.get(ref), after.get(ref)
            da, db = (a.digest if a else None), (b.digest if b else None)
            out.append(Change(label, ref, None, _what(da, db), da, db))
            pa = dict(a.platforms) if a else {}
            pb = dict(b.platforms) if b else {}
            for plat in sorted(set(pa) | set(pb)):
                out.append(Change(label, ref, plat, _what(pa.get(plat), pb.get(plat)),
                                  pa.get(plat), pb.get(plat)))
    return out


def _what(a: str | None, b: str | None) -> str:
    if a is None:
        return "added"
    if b is None:
        return "removed"
    return "unchanged" if a == b else "changed"
