"""Input trees as values: each file's path, exec bit and blake3 digest (computed by the probe)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["FileDigest", "TreeDigest"]


@dataclass(frozen=True)
class FileDigest:
    path: str  # relative, posix
    digest: str
    executable: bool
    size: int
    link: str | None = None  # symlink target, when a symlink


@dataclass(frozen=True)
class TreeDigest:
    """A digest over an input tree plus the listing that produced it (for explain/copying)."""

    root: Path
    digest: str
    files: tuple[FileDigest, ...]
    single: bool = False  # the root is one file (its only entry), not a directory

    def as_map(self) -> dict[str, str]:
        return {f.path: f.digest + ("+x" if f.executable else "") for f in self.files}
