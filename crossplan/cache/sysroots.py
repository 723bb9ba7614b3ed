"""Sysroots in the store: downloaded .debs kept by sha256, and each set of packages extracted
once (``dpkg-deb -x``) into a content-addressed, read-only directory."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from crossplan.errors import EnvironmentProblem
from crossplan.hashing import hash_bytes

__all__ = ["deb_path", "is_materialized", "materialize", "sha256_file", "sysroot_id"]

_DONE = ".crossplan-sysroot"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def deb_path(debs: Path, sha256: str) -> Path:
    """Where the store keeps a downloaded .deb: by its sha256."""
    return debs / f"{sha256}.deb"


def sysroot_id(packages: Iterable[tuple[str, str, str, str]]) -> str:
    """The directory name of a sysroot: a digest of its (name, version, arch, sha256)."""
    text = "\n".join(sorted("\t".join(p) for p in packages))
    return hash_bytes(text.encode())[:32]


def is_materialized(root: Path, ident: str) -> bool:
    """``root/<ident>`` was completely extracted (from .debs verified by sha256)."""
    return (root / ident / _DONE).is_file()


def materialize(root: Path, ident: str, debs: list[Path]) -> Path:
    """``root/<ident>``: the .debs extracted, absolute symlinks made relative to the sysroot
    (``/lib/x/libz.so.1`` -> ``../../../lib/x/libz.so.1``), files read-only. Done once."""
    dest = root / ident
    if (dest / _DONE).is_file():
        return dest
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{ident}.", dir=root))
    try:
        for deb in debs:
            done = subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], capture_output=True,
                                  text=True, check=False)
            if done.returncode != 0:
                raise EnvironmentProblem(
                    f"cannot extract {deb.name}: {done.stderr.strip()}",
                    hint="`apt install dpkg` (dpkg-deb), or remove the corrupt .deb from the store",
                )
        _relative_links(tmp)
        (tmp / _DONE).write_text("\n".join(d.name for d in debs) + "\n")
        _read_only(tmp)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not (dest / _DONE).is_file():  # not a concurrent twin: a real failure
                raise
    finally:
        if tmp.exists():
            _writable(tmp)
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _relative_links(top: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p.is_symlink():
                target = os.readlink(p)
                if target.startswith("/"):
                    rel = os.path.relpath(top / target.lstrip("/"), p.parent)
                    p.unlink()
                    p.symlink_to(rel)


def _read_only(top: Path) -> None:
    for dirpath, _dirs, filenames in os.walk(top):
        for name in filenames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                p.chmod(p.stat().st_mode & 0o555)


def _writable(top: Path) -> None:
    for dirpath, _dirs, filenames in os.walk(top):
        for name in filenames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | 0o200)
