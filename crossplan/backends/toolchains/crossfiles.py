"""CMake toolchain files and Meson cross files for a C target, with or without a sysroot (pure)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from crossplan.platforms import Platform

from .targets import cmake_processor, gnu_triple

__all__ = [
    "MESON_CROSS_FILE",
    "TOOLCHAIN_FILE",
    "CrossSpec",
    "cmake_toolchain",
    "cross_files",
    "meson_cross",
    "meson_host",
]

TOOLCHAIN_FILE = ".crossplan/toolchain.cmake"
_STATIC_NAME = "static-libraries.cmake"  # beside TOOLCHAIN_FILE
MESON_CROSS_FILE = ".crossplan/meson-cross.ini"

# arch -> Meson's cpu_family (https://mesonbuild.com/Reference-tables.html)
_MESON_FAMILY = {
    "amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "386": "x86",
    "riscv64": "riscv64", "ppc64le": "ppc64", "s390x": "s390x",
}
_BIG_ENDIAN = frozenset({"s390x"})


@dataclass(frozen=True)
class CrossSpec:
    """What both files describe: the target, its tools (one path each), flags, and where the
    target's libraries are (``sysroot``: a Debian sysroot; ``find_root``: a cross gcc's own
    ``/usr/<triple>``)."""

    platform: Platform
    kind: str  # zig | gcc | clang
    cc: str
    cxx: str
    ar: str
    ranlib: str
    strip: str
    cflags: str = ""
    cxxflags: str = ""
    ldflags: str = ""
    sysroot: str | None = None
    find_root: str | None = None
    pkg_config_libdir: str = ""


def spec_from_env(
    env: Mapping[str, str], platform: Platform, kind: str, *, sysroot: str | None = None,
    find_root: str | None = None,
) -> CrossSpec:
    """The spec of a build whose ``env`` holds CC, CXX, AR, RANLIB, STRIP and the flags."""
    return CrossSpec(
        platform=platform, kind=kind, cc=env["CC"], cxx=env["CXX"], ar=env["AR"],
        ranlib=env["RANLIB"], strip=env["STRIP"], cflags=env.get("CFLAGS", ""),
        cxxflags=env.get("CXXFLAGS", ""), ldflags=env.get("LDFLAGS", ""), sysroot=sysroot,
        find_root=find_root, pkg_config_libdir=env.get("PKG_CONFIG_LIBDIR", ""),
    )


def _q(text: str) -> str:
    """A CMake quoted argument."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def _static(spec: CrossSpec) -> bool:
    return "-static" in shlex.split(spec.ldflags)


def _shared(ldflags: str) -> str:
    """Link flags for shared libraries: ``-static`` only makes sense for executables."""
    return " ".join(shlex.quote(f) for f in shlex.split(ldflags) if f != "-static")


def cmake_toolchain(spec: CrossSpec) -> str:
    """A CMake toolchain file: compilers and flags, and find_* / pkg-config looking only in the
    target's root. With a Debian sysroot, gcc and clang get ``CMAKE_SYSROOT``; zig keeps its own
    libc, so the sysroot's library dirs are declared implicit (no RPATH into the store)."""
    p = spec.platform
    lines = [
        f"# Written by crossplan: cross-compiling for {p} with {spec.kind}",
        "set(CMAKE_SYSTEM_NAME Linux)",
        f"set(CMAKE_SYSTEM_PROCESSOR {cmake_processor(p)})",
        f"set(CMAKE_C_COMPILER {_q(spec.cc)})",
        f"set(CMAKE_CXX_COMPILER {_q(spec.cxx)})",
        f'set(CMAKE_AR {_q(spec.ar)} CACHE FILEPATH "")',
        f'set(CMAKE_RANLIB {_q(spec.ranlib)} CACHE FILEPATH "")',
        f'set(CMAKE_STRIP {_q(spec.strip)} CACHE FILEPATH "")',
        f"set(CMAKE_C_FLAGS_INIT {_q(spec.cflags)})",
        f"set(CMAKE_CXX_FLAGS_INIT {_q(spec.cxxflags)})",
        f"set(CMAKE_EXE_LINKER_FLAGS_INIT {_q(spec.ldflags)})",
        f"set(CMAKE_SHARED_LINKER_FLAGS_INIT {_q(_shared(spec.ldflags))})",
        "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)",
    ]
    if _static(spec):  # find_* pick the .a files a static link needs: set after project(),
        # which would reset CMAKE_FIND_LIBRARY_SUFFIXES to the platform's (.so;.a)
        lines.append(f'set(CMAKE_PROJECT_INCLUDE "${{CMAKE_CURRENT_LIST_DIR}}/{_STATIC_NAME}")')
    root = spec.sysroot or spec.find_root
    if spec.sysroot:
        triple = gnu_triple(p)
        lines.append(f"set(CMAKE_LIBRARY_ARCHITECTURE {triple})")
        if spec.kind == "zig":
            dirs = " ".join(_q(f"{spec.sysroot}/{d}/{triple}") for d in ("usr/lib", "lib"))
            lines.append(f"set(CMAKE_PLATFORM_IMPLICIT_LINK_DIRECTORIES {dirs})")
        else:
            lines.append(f"set(CMAKE_SYSROOT {_q(spec.sysroot)})")
        lines.append(f"set(ENV{{PKG_CONFIG_SYSROOT_DIR}} {_q(spec.sysroot)})")
    if root:
        lines.append(f"set(CMAKE_FIND_ROOT_PATH {_q(root)})")
    if spec.pkg_config_libdir:
        lines.append(f"set(ENV{{PKG_CONFIG_LIBDIR}} {_q(spec.pkg_config_libdir)})")
    return "\n".join(lines) + "\n"


def meson_host(platform: Platform) -> dict[str, str]:
    """Meson's ``[host_machine]``: system, cpu_family, cpu, endian."""
    cmake_processor(platform)  # an unmapped platform: the RecipeError naming the known ones
    return {
        "system": "linux",
        "cpu_family": _MESON_FAMILY[platform.arch],
        "cpu": cmake_processor(platform),
        "endian": "big" if platform.arch in _BIG_ENDIAN else "little",
    }


def _ini(value: str | list[str] | bool) -> str:
    """A Meson machine-file value: a string, an array of strings or a boolean."""
    def one(s: str) -> str:
        return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "[" + ", ".join(one(v) for v in value) + "]" if isinstance(value, list) else one(value)


def meson_cross(spec: CrossSpec) -> str:
    """A Meson cross file. Meson ignores CFLAGS/LDFLAGS for the host machine of a cross build,
    so the flags (with the sysroot's) are its ``c_args``/``c_link_args``; ``sys_root`` and
    ``pkg_config_libdir`` point pkg-config into the sysroot. ``-static`` (musl, or ``link =
    "static"``) makes libraries static and prefers static dependencies."""
    sections: dict[str, dict[str, str | list[str] | bool]] = {
        "binaries": {
            "c": [spec.cc], "cpp": [spec.cxx], "ar": [spec.ar], "strip": [spec.strip],
            "pkg-config": ["pkg-config"],
        },
        "built-in options": {
            "c_args": shlex.split(spec.cflags), "cpp_args": shlex.split(spec.cxxflags),
            "c_link_args": shlex.split(spec.ldflags), "cpp_link_args": shlex.split(spec.ldflags),
        },
        "properties": {},
        "host_machine": dict(meson_host(spec.platform)),
    }
    if _static(spec):  # static executables: static libraries, and .a files found first
        sections["built-in options"].update(default_library="static", prefer_static=True)
    props = sections["properties"]
    if spec.sysroot:
        props["sys_root"] = spec.sysroot
    if spec.pkg_config_libdir:
        props["pkg_config_libdir"] = [d for d in spec.pkg_config_libdir.split(":") if d]
    out = [f"# Written by crossplan: cross-compiling for {spec.platform} with {spec.kind}"]
    for name, values in sections.items():
        out.append(f"\n[{name}]")
        out += [f"{k} = {_ini(v)}" for k, v in values.items()]
    return "\n".join(out) + "\n"


def cross_files(spec: CrossSpec) -> dict[str, str]:
    """Both files (and the CMake file a static link includes), by their path in the work dir."""
    files = {TOOLCHAIN_FILE: cmake_toolchain(spec), MESON_CROSS_FILE: meson_cross(spec)}
    if _static(spec):
        files[f"{TOOLCHAIN_FILE.rpartition('/')[0]}/{_STATIC_NAME}"] = (
            "# Written by crossplan: a static link finds static libraries\n"
            "set(CMAKE_FIND_LIBRARY_SUFFIXES .a)\n")
    return files
