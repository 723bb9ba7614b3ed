"""What is installed, as data for ``plan toolchains [--json]``; re-exports ``toolchain_for``."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from crossplan.platforms import SUPPORTED, Platform, build_platform

from ._proc import SAFE_PATH, Runner, first_line, run, which
from .cc import CrossCC, gcc_package_hint
from .choose import toolchain_for
from .find import find_go, find_rust, find_zig
from .managed import DEFAULT_VERSIONS, DISTS
from .rust import RustToolchain, rust_triple
from .targets import gnu_triple

__all__ = ["FoundToolchain", "discover", "toolchain_for"]

_PLATFORMS = tuple(Platform.parse(p) for p in SUPPORTED)
_MANAGED_EXE = {"go": "go/bin/go", "zig": "ziglang/zig"}


@dataclass(frozen=True)
class FoundToolchain:
    """One installed tool, as ``plan toolchains --json`` prints it."""

    kind: str  # go | rust | c
    name: str  # go | rustc | zig | gcc | clang
    path: str
    version: str
    # path | python-package | managed | managed (default) | rustup:<toolchain> | system;
    # "managed (default)": the version steps get when nothing is pinned or installed
    source: str
    platforms: tuple[str, ...]  # targets it can build for (Rust: the gnu std is installed)
    notes: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def discover(
    environ: Mapping[str, str] | None = None,
    *,
    store_dir: Path | None = None,
    runner: Runner = run,
) -> list[FoundToolchain]:
    """Go, zig, managed toolchains in ``store_dir``, each rustc (targets with std), gcc, clang."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault("PATH", SAFE_PATH)
    every = tuple(SUPPORTED)

    def found(kind: str, name: str, exe: Path, *version: str, **kw: Any) -> FoundToolchain:
        try:
            text = first_line(runner((str(exe), *version), None))
        except (OSError, subprocess.SubprocessError):
            text = "?"
        source = "python-package" if "site-packages" in exe.parts else "path"
        fields = {"source": source, "platforms": every, **kw}
        return FoundToolchain(kind, name, str(exe), text, **fields)

    out: list[FoundToolchain] = []
    go = find_go(env, runner)
    if go is not None:
        out.append(found("go", "go", go[0], "version"))
    zig = find_zig(env)
    if zig is not None:
        out.append(found("c", "zig", zig, "version"))
    for root in sorted(store_dir.glob("toolchains/*-*-*")) if store_dir else []:
        name = root.name.split("-")[0]
        exe = root / _MANAGED_EXE.get(name, "?")
        if not root.name.startswith(".") and exe.is_file():
            kind = "go" if name == "go" else "c"
            version = root.name.split("-")[1]
            default = DEFAULT_VERSIONS.get(name) == version
            note = (f"{DISTS[name]} {version}: used when no {name} is pinned or installed"
                    if default else f"{DISTS[name]} {version}: pinned by a recipe")
            out.append(found(kind, name, exe, "version", notes=note,
                             source="managed (default)" if default else "managed"))
    rust = RustToolchain(find_rust(env, runner), linker=_no_linker, runner=runner)
    for c in rust.compilers:
        gnu = tuple(str(p) for p in _PLATFORMS if rust.has_std(c, rust_triple(p)))
        musl = [
            rust_triple(p, "musl") for p in _PLATFORMS if rust.has_std(c, rust_triple(p, "musl"))
        ]
        notes = "musl std: " + ", ".join(musl) if musl else ""
        out.append(
            found("rust", "rustc", c.rustc, "-V", source=c.source, platforms=gnu, notes=notes)
        )
    by_triple: dict[str, list[str]] = {}
    for p in _PLATFORMS:
        by_triple.setdefault(gnu_triple(p), []).append(str(p))
    for triple, plats in by_triple.items():
        gcc = which(f"{triple}-gcc", env)
        if gcc is not None:
            libc = any(
                Path(d, "libc.so").exists() for d in (f"/usr/{triple}/lib", f"/usr/lib/{triple}")
            )
            hint = "" if libc else f"no libc for it: {gcc_package_hint(Platform.parse(plats[0]))}"
            out.append(
                found(
                    "c",
                    "gcc",
                    gcc,
                    "--version",
                    source="system",
                    platforms=tuple(plats),
                    notes=hint,
                )
            )
    clang = which("clang", env)
    if clang is not None:
        sysroots = tuple(
            str(p)
            for p in _PLATFORMS
            if p == build_platform() or Path("/usr", gnu_triple(p)).is_dir()
        )
        note = "glibc targets that have a /usr/<triple> sysroot"
        out.append(
            found("c", "clang", clang, "--version", source="system", platforms=sysroots, notes=note)
        )
    return out


def _no_linker(platform: Platform) -> CrossCC:
    raise AssertionError("discover() never links")
