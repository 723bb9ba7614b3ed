"""Which installed Rust toolchain builds a crate for a target, and why: the crate's needs
(edition, ``rust-version``, Cargo.lock version) against each rustc/cargo pair's version,
and the target's std. An impossible combination is one error listing every candidate and
what it lacks."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from crossplan.errors import EnvironmentProblem

__all__ = ["Candidate", "CrateNeeds", "choose_rust", "crate_needs", "parse_version"]

Version = tuple[int, int, int]
# The first rustc that knows each edition; the first cargo that reads each Cargo.lock version.
_EDITION = {"2015": (1, 0, 0), "2018": (1, 31, 0), "2021": (1, 56, 0), "2024": (1, 85, 0)}
_LOCK = {1: (1, 0, 0), 2: (1, 41, 0), 3: (1, 53, 0), 4: (1, 78, 0)}


def parse_version(text: str | None) -> Version | None:
    """``rustc 1.63.0 (4b91a6ea7 2022-08-08)`` / ``1.70`` -> ``(1, 63, 0)`` / ``(1, 70, 0)``."""
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else None


def _show(v: Version) -> str:
    return ".".join(map(str, v))


@dataclass(frozen=True)
class CrateNeeds:
    """What a crate asks of its toolchain (None: not stated)."""

    edition: str = "2015"
    rust_version: Version | None = None
    lock_version: int | None = None  # Cargo.lock's ``version = N`` (1 when absent)

    def problems(self, rustc: Version | None, cargo: Version | None) -> list[str]:
        """What a (rustc, cargo) pair lacks for this crate: [] when it fits."""
        out = []
        if rustc is not None:
            need = _EDITION.get(self.edition)
            if need is not None and rustc < need:
                out.append(f"edition {self.edition} needs rustc >= {_show(need)}")
            if self.rust_version is not None and rustc < self.rust_version:
                out.append(f"rust-version = \"{_show(self.rust_version)}\" needs rustc >= "
                           f"{_show(self.rust_version)}")
        if cargo is not None and self.lock_version is not None:
            need = _LOCK.get(self.lock_version, (99, 0, 0))
            if cargo < need:
                out.append(f"Cargo.lock version {self.lock_version} needs cargo >= {_show(need)}")
        return out


def crate_needs(src: Path) -> CrateNeeds:
    """Read Cargo.toml (edition, rust-version; workspace-inherited values count) and
    Cargo.lock (its format version) in ``src``; unreadable files state no needs."""
    edition, rust_version, lock = "2015", None, None
    try:
        manifest = tomllib.loads((src / "Cargo.toml").read_text())
        pkg = manifest.get("package", {})
        ws = manifest.get("workspace", {}).get("package", {})
        ed = pkg.get("edition", "2015")
        edition = str(ws.get("edition", "2015") if isinstance(ed, dict) else ed)
        rv = pkg.get("rust-version")
        rust_version = parse_version(str(ws.get("rust-version") if isinstance(rv, dict) else rv)
                                     if rv is not None else None)
    except (OSError, tomllib.TOMLDecodeError):
        pass
    try:
        lock_doc = tomllib.loads((src / "Cargo.lock").read_text())
        lock = int(lock_doc.get("version", 1))
    except (OSError, tomllib.TOMLDecodeError, ValueError):
        lock = None
    return CrateNeeds(edition, rust_version, lock)


@dataclass(frozen=True)
class Candidate:
    """One installed toolchain as the choice sees it."""

    label: str  # "rustc 1.63.0 (system: /usr/bin/rustc)"
    rustc: Version | None
    cargo: Version | None
    has_std: bool


def choose_rust(
    candidates: Sequence[Candidate], needs: CrateNeeds, triple: str,
    hint: str = "",
) -> tuple[int, str]:
    """(index of the chosen candidate, why) — the first in preference order that has the
    target's std and meets the crate's needs; else EnvironmentProblem listing each candidate
    and what it lacks."""
    lacks: list[str] = []
    for i, c in enumerate(candidates):
        problems = ([] if c.has_std else [f"no std for {triple}"]) + needs.problems(
            c.rustc, c.cargo)
        if not problems:
            others = [f"{o}" for o in lacks]
            why = f"chose {c.label} for {triple}: has its std"
            if needs.lock_version or needs.rust_version or needs.edition != "2015":
                why += f" and meets the crate's needs ({_needs_text(needs)})"
            if others:
                why += "; skipped " + "; ".join(others)
            return i, why
        lacks.append(f"{c.label}: {', '.join(problems)}")
    raise EnvironmentProblem(
        f"no installed Rust toolchain can build this crate for {triple}:\n  - "
        + "\n  - ".join(lacks),
        hint=hint or "install a toolchain that has both (e.g. `rustup target add "
        f"{triple}` on a new enough rustup toolchain), or lower the crate's needs",
    )


def _needs_text(needs: CrateNeeds) -> str:
    parts = [f"edition {needs.edition}"]
    if needs.rust_version:
        parts.append(f"rust-version {_show(needs.rust_version)}")
    if needs.lock_version:
        parts.append(f"Cargo.lock v{needs.lock_version}")
    return ", ".join(parts)


def label(rustc_v: str | None, source: str, rustc: Path) -> str:
    words = (rustc_v or "rustc ?").split()
    return f"{' '.join(words[:2])} ({source}: {rustc})"


Probe = Callable[[tuple[str, ...]], str | None]
