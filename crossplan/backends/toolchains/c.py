"""C/C++ steps: the step's ``build`` (Make, CMake, Meson...) run with the target's CC/AR/..."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from crossplan.errors import EnvironmentProblem
from crossplan.platforms import Platform
from crossplan.recipes.models import CStep
from crossplan.recipes.rules import Violation
from crossplan.recipes.rules import one_argv as _one_argv

from ._proc import Runner, first_line, run
from .base import BuildAction
from .cc import CrossCC, exec_script
from .crossfiles import (
    MESON_CROSS_FILE,
    TOOLCHAIN_FILE,
    cross_files,
    spec_from_env,
)
from .targets import gnu_triple

__all__ = ["CToolchain", "build_command"]

MESON_WRAPPER = ".crossplan/bin/meson"
_INSTALL = {"cmake": "`apt install cmake ninja-build`",
            "meson": "`pip install 'crossplan[toolchains]'` (or `apt install meson ninja-build`)"}
# Outputs that are not ELF files, so no machine check applies.
_NOT_ELF = (".a", ".h", ".hpp", ".pc", ".cmake", ".txt", ".json", ".tar", ".gz")


def one_argv(argv: tuple[str, ...], what: str) -> None:
    """A program name with spaces (``["cmake -S . -B build", ...]``) is not found: raised
    when the step is lowered, so it fails that step alone (exit 3) and says which form
    was meant (a compile stage in a container reads the same list as shell lines)."""
    try:
        _one_argv(argv, what)
    except Violation as exc:
        raise EnvironmentProblem(exc.message, hint=exc.hint) from None


def build_command(build: tuple[str, ...]) -> tuple[str, ...]:
    """``build`` (as the recipe normalized it, recipes/rules.py ``command``) as one command:
    a one-string list is a shell line (``sh -c``), so ``["make libx.a"]`` and ``["$CC
    $CFLAGS -o x x.c"]`` work; several strings are an argv run as is, like a shell step's
    ``command``: ``["make", "hello"]``. A string (``build = "make"``, a multi-line script)
    and a list of lists arrive as ``sh -ec SCRIPT``, run as is (stopping at the first
    failure)."""
    if len(build) == 1:
        return ("sh", "-c", build[0])
    one_argv(tuple(build), "build")
    return tuple(build)


def _static(libc: str, link: str | None) -> bool:
    """musl links statically unless ``link = "dynamic"``; glibc only with ``link = "static"``."""
    return link == "static" or (libc == "musl" and link != "dynamic")


class CToolchain:
    """Runs a C step's ``build`` command with a cross compiler (CC, AR, CFLAGS...) in the env."""

    name = "c"

    def __init__(
        self, cc: Callable[[Platform], CrossCC], *, pin: str = "", runner: Runner = run,
        notes: list[str] | None = None,
        build_tools: Mapping[str, tuple[str, ...]] | None = None, path: str = "",
        missing: tuple[str, ...] = (),
    ):
        self.cc = cc
        self.pin = pin
        self.runner = runner
        # The build tools the step's commands name (cmake, meson) and how to run them: their
        # versions enter keys. Meson (often this interpreter's mesonbuild) is put first on the
        # step's PATH as a wrapper, so the sandbox binds it; ``path``: the user's PATH after it.
        self.build_tools = dict(build_tools or {})
        self.path = path
        self.missing = missing  # build tools the step runs that are not installed
        # What the user should know about the choice (e.g. the managed default zig was
        # used for a platform without a cross compiler); grows as platforms are asked for.
        self.notes = notes if notes is not None else []

    def fingerprint(self, platform: Platform) -> str:
        cross = self.cc(platform)
        lines = [f"{cross.kind}: {cross.identity(self.runner)}", f"libc={cross.libc}"]
        pin = self.pin or cross.pin
        if pin:
            lines.append(f"managed {pin}")
        for name, argv in sorted(self.build_tools.items()):
            try:
                version = first_line(self.runner((*argv, "--version"), None))
            except (OSError, subprocess.SubprocessError) as exc:
                raise EnvironmentProblem(f"cannot run {name} --version: {exc}",
                                         hint=f"reinstall {name}") from exc
            lines.append(f"{name}: {version}")
        return "\n".join(lines)

    def action(
        self, step: object, platform: Platform, workdir: Path, cache_dir: Path, *,
        source: Path | None = None,
    ) -> BuildAction:
        if not isinstance(step, CStep):
            raise TypeError(f"CToolchain cannot build {type(step).__name__}")
        if self.missing:
            raise EnvironmentProblem(
                f"the step's build runs {' and '.join(self.missing)}, which "
                f"{'are' if len(self.missing) > 1 else 'is'} not installed",
                hint="; ".join(_INSTALL[t] for t in self.missing))
        cross = self.cc(platform)
        setup = cross.setup(workdir, cache_dir)
        flags = f"-O2 -ffile-prefix-map={workdir}=."
        env = {
            **setup.env,
            "CFLAGS": flags,
            "CXXFLAGS": flags,
            "LDFLAGS": "-static" if _static(cross.libc, step.link) else "",
            "ARFLAGS": "rcsD",
            "ZERO_AR_DATE": "1",
            "CROSSPLAN_GNU_TRIPLE": gnu_triple(platform),
            "CMAKE_TOOLCHAIN_FILE": str(workdir / TOOLCHAIN_FILE),
            "CROSSPLAN_MESON_CROSS_FILE": str(workdir / MESON_CROSS_FILE),
        }
        if cross.sysroot:
            triple = gnu_triple(platform)
            env["PKG_CONFIG_LIBDIR"] = f"/usr/lib/{triple}/pkgconfig:/usr/{triple}/lib/pkgconfig"
        elif cross.kind == "zig":
            env["PKG_CONFIG_LIBDIR"] = ""
        spec = spec_from_env(env, platform, cross.kind, find_root=cross.sysroot)
        files = {**setup.files, **cross_files(spec)}
        prepare = setup.prepare
        if "meson" in self.build_tools:
            files[MESON_WRAPPER] = exec_script(self.build_tools["meson"])
            env["MESON"] = str(workdir / MESON_WRAPPER)
            bindir = str((workdir / MESON_WRAPPER).parent)
            env["PATH"] = f"{bindir}:{self.path}" if self.path else bindir
            prepare = (*prepare, ("chmod", "0755", env["MESON"]))
        commands = (*prepare, build_command(step.build))
        return BuildAction(
            commands=commands,
            env=env,
            outputs=step.outputs,
            executables=tuple(o for o in step.outputs if not o.endswith(_NOT_ELF)),
            files=files,
        )
