"""A Debian sysroot applied to a toolchain's build: ``--sysroot`` for the compiler and linker,
pkg-config pointed into it, CMake/Meson files, cgo's and Rust's variables for the target (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from crossplan.platforms import Platform

from .base import BuildAction
from .crossfiles import TOOLCHAIN_FILE, cross_files, spec_from_env
from .rust import rust_triple
from .targets import gnu_triple

__all__ = ["cc_kind", "sysroot_env", "with_sysroot"]


def _flags(root: str, triple: str, cc_kind: str) -> str:
    """Compiler flags: gcc and clang understand Debian's multiarch layout under --sysroot; zig
    keeps its own libc and reads the sysroot's other headers and libraries after it."""
    remap = f"-ffile-prefix-map={root}=/sysroot"
    if cc_kind != "zig":
        return f"--sysroot={root} {remap}"
    return " ".join((
        f"-idirafter {root}/usr/include/{triple}", f"-idirafter {root}/usr/include",
        f"-L{root}/usr/lib/{triple}", f"-L{root}/lib/{triple}", remap,
    ))


def sysroot_env(
    root: str, platform: Platform, toolchain: str, cc_kind: str, env: Mapping[str, str],
    libc: str = "gnu",
) -> dict[str, str]:
    """The variables a build against ``root`` needs (merged over ``env``)."""
    triple = gnu_triple(platform)
    flags = _flags(root, triple, cc_kind)
    pc = ":".join((f"{root}/usr/lib/{triple}/pkgconfig", f"{root}/usr/share/pkgconfig",
                   f"{root}/usr/lib/pkgconfig"))
    out = {
        "CROSSPLAN_SYSROOT": root,
        "PKG_CONFIG_SYSROOT_DIR": root,
        "PKG_CONFIG_LIBDIR": pc,
        "PKG_CONFIG_PATH": "",
        "PKG_CONFIG_ALLOW_CROSS": "1",
    }

    def add(var: str, extra: str) -> None:
        out[var] = f"{env.get(var, '')} {extra}".strip()

    if toolchain == "c":
        for var in ("CFLAGS", "CXXFLAGS", "LDFLAGS"):
            add(var, flags)
    elif toolchain == "go":
        out["CGO_CFLAGS"] = f"-O2 {flags}"
        out["CGO_CXXFLAGS"] = f"-O2 {flags}"
        out["CGO_LDFLAGS"] = flags
    elif toolchain == "rust":
        rt = rust_triple(platform, libc).replace("-", "_")
        out[f"CFLAGS_{rt}"] = flags
        out[f"CXXFLAGS_{rt}"] = flags
        out[f"PKG_CONFIG_SYSROOT_DIR_{rt}"] = root
        out[f"PKG_CONFIG_LIBDIR_{rt}"] = pc
        args = ([f"--sysroot={root}"] if cc_kind != "zig"
                else [f"-L{root}/usr/lib/{triple}", f"-L{root}/lib/{triple}"])
        add("RUSTFLAGS", " ".join(f"-C link-arg={a}" for a in args))
    return out


def cc_kind(toolchain: object, platform: Platform) -> str:
    """The C compiler kind (zig, gcc, clang) a toolchain uses for ``platform``."""
    for attr in ("cc", "linker"):
        pick = getattr(toolchain, attr, None)
        if callable(pick):
            return str(getattr(pick(platform), "kind", "gcc"))
    return "gcc"


def with_sysroot(
    built: BuildAction, root: str, platform: Platform, toolchain: str, cc_kind: str,
    libc: str = "gnu",
) -> BuildAction:
    """``built`` with the sysroot's variables in its environment, and its CMake toolchain and
    Meson cross files (when it has them) made again for the sysroot."""
    env = {**built.env, **sysroot_env(root, platform, toolchain, cc_kind, built.env, libc)}
    files = dict(built.files)
    if TOOLCHAIN_FILE in files and all(v in env for v in ("CC", "CXX", "AR", "RANLIB", "STRIP")):
        files.update(cross_files(spec_from_env(env, platform, cc_kind, sysroot=root)))
    return BuildAction(commands=built.commands, env=env, outputs=built.outputs,
                       executables=built.executables, files=files)
