"""The push records (``<store>/pushed/``) an offline push is answered from; the offline
switch itself is ``crossplan.network`` (re-exported here for the image backends)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

from crossplan.network import ENV, forced, is_offline, refuse

__all__ = ["ENV", "forced", "is_offline", "last_pushed", "record_path", "record_push", "refuse"]


def record_path(store_root: Path, ref: str) -> Path:
    """Where the store remembers what it last saw ``ref`` (registry/repo:tag) name."""
    return store_root / "pushed" / f"{hashlib.sha256(ref.encode()).hexdigest()[:40]}.json"


def last_pushed(store_root: Path, ref: str) -> str | None:
    """The digest this store last pushed to (or found at) ``ref``, if any."""
    try:
        doc = json.loads(record_path(store_root, ref).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("ref") != ref:
        return None
    digest = doc.get("digest")
    return digest if isinstance(digest, str) else None


def record_push(store_root: Path, ref: str, digest: str) -> None:
    """Remember that ``ref`` names ``digest`` (after a push wrote it or found it there);
    an unchanged record is left alone (its stat signature is part of offline no-op memos)."""
    if last_pushed(store_root, ref) == digest:
        return
    path = record_path(store_root, ref)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"ref": ref, "digest": digest}, f)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
