"""Pick a C cross compiler (zig cc, Debian's <triple>-gcc, clang) for a platform and describe it."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from crossplan.errors import EnvironmentProblem
from crossplan.platforms import Platform

from ._proc import Runner, first_line
from .targets import debian_arch, gnu_triple, zig_target

__all__ = ["CCSetup", "CrossCC", "arch_flags", "exec_script", "find_cc", "gcc_package_hint"]

Which = Callable[[str], Path | None]
WRAPPER_DIR = ".crossplan/cc"


def arch_flags(platform: Platform, kind: str) -> tuple[str, ...]:
    """Flags every compile for ``platform`` needs beyond the target triple (only arm/v6 today)."""
    if (platform.arch, platform.variant) != ("arm", "v6"):
        return ()
    if kind == "zig":
        return ("-mcpu=arm1176jzf_s",)
    return ("-march=armv6+fp", "-marm")


def gcc_package_hint(platform: Platform) -> str:
    """``apt install gcc-aarch64-linux-gnu libc6-dev-arm64-cross``."""
    triple = gnu_triple(platform)
    return f"apt install gcc-{triple} libc6-dev-{debian_arch(platform)}-cross"


@dataclass(frozen=True)
class CCSetup:
    """What a build needs to use a CrossCC: env vars, wrapper files, commands preparing them."""

    env: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)
    prepare: tuple[tuple[str, ...], ...] = ()
    cc_path: str = ""


@dataclass(frozen=True)
class CrossCC:
    """A C compiler invocation for one target: argv prefixes for cc/c++/ar/ranlib/strip."""

    kind: str
    platform: Platform
    libc: str
    cc: tuple[str, ...]
    cxx: tuple[str, ...]
    ar: tuple[str, ...]
    ranlib: tuple[str, ...]
    strip: tuple[str, ...] | None
    version_argv: tuple[str, ...]
    flags: tuple[str, ...] = ()
    sysroot: str | None = None
    pin: str = ""  # a managed zig's wheel and sha256 (enters fingerprints), else ""

    @property
    def target(self) -> str:
        return (
            zig_target(self.platform, self.libc)
            if self.kind == "zig"
            else gnu_triple(self.platform)
        )

    def identity(self, runner: Runner) -> str:
        """E.g. ``zig 0.17.1 target=aarch64-linux-musl`` (the version line, target, flags)."""
        try:
            version = first_line(runner(self.version_argv, None))
        except (OSError, subprocess.SubprocessError) as exc:
            raise EnvironmentProblem(
                f"cannot run {' '.join(self.version_argv)}: {exc}",
                hint=f"reinstall the {self.kind} toolchain",
            ) from exc
        if self.kind == "zig":
            version = f"zig {version}"
        return " ".join([version, f"target={self.target}", *self.flags])

    @property
    def needs_wrappers(self) -> bool:
        return len(self.cc) > 1 or bool(self.flags)

    def setup(self, workdir: Path, cache_dir: Path) -> CCSetup:
        """Env (CC, CXX, AR, RANLIB, STRIP), plus one-word wrapper scripts when cc needs args."""
        env: dict[str, str] = {}
        if self.kind == "zig":
            env["ZIG_GLOBAL_CACHE_DIR"] = str(cache_dir / "zig" / "global")
            env["ZIG_LOCAL_CACHE_DIR"] = str(cache_dir / "zig" / "local")
        if not self.needs_wrappers and self.strip is not None:
            tools = {"CC": self.cc, "CXX": self.cxx, "AR": self.ar, "RANLIB": self.ranlib}
            env.update({k: " ".join(v) for k, v in tools.items()})
            env["STRIP"] = " ".join(self.strip)
            return CCSetup(env=env, cc_path=self.cc[0])
        scripts = {
            "cc": self._compiler_script(self.cc),
            "c++": self._compiler_script(self.cxx),
            "ar": exec_script(self.ar),
            "ranlib": exec_script(self.ranlib),
            "strip": exec_script(self.strip) if self.strip else _NOOP_STRIP,
        }
        base = workdir / WRAPPER_DIR
        files = {f"{WRAPPER_DIR}/{name}": text for name, text in scripts.items()}
        names = {"CC": "cc", "CXX": "c++", "AR": "ar", "RANLIB": "ranlib", "STRIP": "strip"}
        env.update({var: str(base / name) for var, name in names.items()})
        chmod = ("chmod", "0755", *(str(base / name) for name in scripts))
        return CCSetup(env=env, files=files, prepare=(chmod,), cc_path=str(base / "cc"))

    def _compiler_script(self, argv: tuple[str, ...]) -> str:
        cmd = " ".join(shlex.quote(a) for a in (*argv, *self.flags))
        if self.kind != "zig":
            return f'#!/bin/sh\nexec {cmd} "$@"\n'
        # zig builds libc on demand and its objects carry the zig cache dir and the first
        # caller's cwd in DWARF; dropping DWARF at link time keeps binaries reproducible.
        return (
            "#!/bin/sh\n"
            'case " $* " in\n'
            f'  *" -c "*|*" -S "*|*" -E "*|*" -M "*|*" -MM "*) exec {cmd} "$@" ;;\n'
            "esac\n"
            f'exec {cmd} "$@" -Wl,--strip-debug\n'
        )


def exec_script(argv: tuple[str, ...]) -> str:
    """A one-line ``sh`` wrapper running ``argv`` with the caller's arguments."""
    return "#!/bin/sh\nexec " + " ".join(shlex.quote(a) for a in argv) + ' "$@"\n'


_NOOP_STRIP = '#!/bin/sh\necho "strip: no strip for this target installed; left unstripped" >&2\n'


def find_cc(
    platform: Platform,
    libc: str,
    compiler: str,
    *,
    zig: Path | None,
    which: Which,
    build: Platform,
    pin: str = "",
) -> CrossCC:
    """Choose per ``compiler`` (``auto`` prefers zig: one binary for every arch). ``pin``:
    ``zig`` is a managed toolchain (its wheel and sha256).

    Raises EnvironmentProblem naming the package to install when nothing fits.
    """
    if compiler in ("zig", "auto") and zig is not None:
        return _zig(platform, libc, zig, which, pin)
    if compiler == "zig":
        raise EnvironmentProblem(
            'compiler = "zig" but no zig is installed',
            hint='`pip install ziglang`, or pin it in plan.toml: [toolchains] zig = "0.17.1"',
        )
    if "." in libc:
        raise EnvironmentProblem(
            f"no C compiler for {platform} with a glibc floor (libc = \"{libc}\"): only zig "
            "links against an older glibc's symbols; gcc and clang use the installed glibc",
            hint='`pip install ziglang` and compiler = "zig" (or "auto"), or libc = "gnu"',
        )
    if libc == "musl":
        raise EnvironmentProblem(
            f"no C compiler for {platform} with musl: Debian's cross gcc targets glibc",
            hint='`pip install ziglang` (zig cc links musl for every arch), or set libc = "gnu"',
        )
    if compiler == "clang":
        return _clang(platform, which, build)
    found = _gcc(platform, which, build)
    if found is None:
        raise EnvironmentProblem(
            f"no C cross compiler for {platform}: {gnu_triple(platform)}-gcc not found",
            hint=f"`{gcc_package_hint(platform)}`, or `pip install ziglang`",
        )
    return found


def _zig(platform: Platform, libc: str, zig: Path, which: Which, pin: str = "") -> CrossCC:
    z = str(zig)
    target = zig_target(platform, libc)
    strip = which(f"{gnu_triple(platform)}-strip") or which("llvm-strip")
    return CrossCC(
        kind="zig",
        platform=platform,
        libc=libc,
        cc=(z, "cc", "-target", target),
        cxx=(z, "c++", "-target", target),
        ar=(z, "ar"),
        ranlib=(z, "ranlib"),
        strip=(str(strip),) if strip else None,
        version_argv=(z, "version"),
        flags=arch_flags(platform, "zig"),
        pin=pin,
    )


def _gcc(platform: Platform, which: Which, build: Platform) -> CrossCC | None:
    triple = gnu_triple(platform)
    gcc = which(f"{triple}-gcc")
    prefix = f"{triple}-"
    if gcc is None and platform == build:
        gcc, prefix = which("gcc") or which("cc"), ""
    if gcc is None:
        return None

    def tool(name: str) -> tuple[str, ...]:
        found = which(prefix + name) or which(name)
        return (str(found) if found else prefix + name,)

    gxx = which(f"{prefix}g++")
    return CrossCC(
        kind="gcc",
        platform=platform,
        libc="gnu",
        cc=(str(gcc),),
        cxx=(str(gxx) if gxx else f"{prefix}g++",),
        ar=tool("ar"),
        ranlib=tool("ranlib"),
        strip=tool("strip"),
        version_argv=(str(gcc), "--version"),
        flags=arch_flags(platform, "gcc"),
        sysroot=None if platform == build else f"/usr/{triple}",
    )


def _clang(platform: Platform, which: Which, build: Platform) -> CrossCC:
    clang = which("clang")
    if clang is None:
        raise EnvironmentProblem(
            'compiler = "clang" but clang is not installed',
            hint='`apt install clang lld`, or use compiler = "zig" (`pip install ziglang`)',
        )
    triple = gnu_triple(platform)
    ar = which("llvm-ar") or which(f"{triple}-ar") or which("ar")
    ranlib = which("llvm-ranlib") or which(f"{triple}-ranlib") or which("ranlib")
    strip = which("llvm-strip") or which(f"{triple}-strip")
    clangxx = which("clang++")
    target = f"--target={triple}"
    return CrossCC(
        kind="clang",
        platform=platform,
        libc="gnu",
        cc=(str(clang), target),
        cxx=(str(clangxx) if clangxx else "clang++", target),
        ar=(str(ar) if ar else "ar",),
        ranlib=(str(ranlib) if ranlib else "ranlib",),
        strip=(str(strip),) if strip else None,
        version_argv=(str(clang), "--version"),
        flags=arch_flags(platform, "clang"),
        sysroot=None if platform == build else f"/usr/{triple}",
    )
