"""Helpers for the libc/ELF/sysroot tests: a toolchain cache shared across tests and runs
(zig builds its libc stubs once; speed only, never in keys), and reading exported binaries."""

from __future__ import annotations

import os
from pathlib import Path

CI_CACHE = Path(os.environ.get("CROSSPLAN_CI_CACHE", "/var/cache/crossplan-ci"))


def shared_toolcache(fallback: Path) -> dict[str, str]:
    """``CROSSPLAN_TOOLCACHE_DIR`` in the machine's CI cache when writable, else ``fallback``."""
    shared = CI_CACHE / "toolcache"
    try:
        shared.mkdir(parents=True, exist_ok=True)
        ok = os.access(shared, os.W_OK)
    except OSError:
        ok = False
    return {"CROSSPLAN_TOOLCACHE_DIR": str(shared if ok else fallback)}


def exported(root: Path, step: str, platform: str, name: str) -> Path:
    """The file ``--export root`` wrote for (step, platform)."""
    return root / step / platform.replace("/", "_") / name


def sysroot_env(fallback: Path) -> dict[str, str]:
    """Toolchain cache plus ``CROSSPLAN_SYSROOT_CACHE``: apt lists and .debs shared across runs
    (every .deb is checked against its sha256 before use)."""
    shared = CI_CACHE / "sysroots"
    try:
        shared.mkdir(parents=True, exist_ok=True)
        ok = os.access(shared, os.W_OK)
    except OSError:
        ok = False
    return {**shared_toolcache(fallback / "toolcache"),
            "CROSSPLAN_SYSROOT_CACHE": str(shared if ok else fallback / "sysroots")}


def apt_ok() -> bool:
    """apt-get and dpkg-deb are here (sysroots are fetched through the machine's apt)."""
    import shutil

    return bool(shutil.which("apt-get") and shutil.which("dpkg-deb"))
