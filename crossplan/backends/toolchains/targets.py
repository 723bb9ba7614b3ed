"""Pure platform tables shared by toolchains: GNU triples, zig targets, Debian/QEMU names."""

from __future__ import annotations

from crossplan.errors import RecipeError
from crossplan.platforms import Platform

__all__ = [
    "cmake_processor",
    "debian_arch",
    "gnu_triple",
    "qemu_arch",
    "wheel_arch",
    "zig_target",
]

# (arch, variant) -> (GNU triple / Debian cross prefix, Debian arch, QEMU arch, uname -m)
_TABLE: dict[tuple[str, str], tuple[str, str, str, str]] = {
    ("amd64", ""): ("x86_64-linux-gnu", "amd64", "x86_64", "x86_64"),
    ("arm64", ""): ("aarch64-linux-gnu", "arm64", "aarch64", "aarch64"),
    ("arm", "v7"): ("arm-linux-gnueabihf", "armhf", "arm", "armv7l"),
    ("arm", "v6"): ("arm-linux-gnueabihf", "armhf", "arm", "armv6l"),
    ("386", ""): ("i686-linux-gnu", "i386", "i386", "i686"),
    ("riscv64", ""): ("riscv64-linux-gnu", "riscv64", "riscv64", "riscv64"),
    ("ppc64le", ""): ("powerpc64le-linux-gnu", "ppc64el", "ppc64le", "ppc64le"),
    ("s390x", ""): ("s390x-linux-gnu", "s390x", "s390x", "s390x"),
}

_ZIG_ARCH = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "arm": "arm",
    "386": "x86",
    "riscv64": "riscv64",
    "ppc64le": "powerpc64le",
    "s390x": "s390x",
}


def _row(platform: Platform) -> tuple[str, str, str, str]:
    row = _TABLE.get((platform.arch, platform.variant)) if platform.os == "linux" else None
    if row is None:
        raise RecipeError(
            f"no cross toolchain mapping for platform {platform}",
            hint="use one of: " + ", ".join(sorted(_format(k) for k in _TABLE)),
        )
    return row


def _format(key: tuple[str, str]) -> str:
    return f"linux/{key[0]}/{key[1]}" if key[1] else f"linux/{key[0]}"


def gnu_triple(platform: Platform) -> str:
    """The GNU triple, which is also Debian's cross-gcc prefix: ``aarch64-linux-gnu``."""
    return _row(platform)[0]


def debian_arch(platform: Platform) -> str:
    """Debian's architecture name (``apt install pkg:arm64``): ``arm64``, ``armhf``, ``ppc64el``."""
    return _row(platform)[1]


def qemu_arch(platform: Platform) -> str:
    """QEMU user-mode suffix: ``qemu-aarch64-static``, binfmt entry ``qemu-aarch64``."""
    return _row(platform)[2]


def cmake_processor(platform: Platform) -> str:
    """``CMAKE_SYSTEM_PROCESSOR`` (what ``uname -m`` prints on the target)."""
    return _row(platform)[3]


def wheel_arch(platform: Platform) -> str:
    """The architecture in manylinux wheel tags: ``x86_64``, ``aarch64``, ``armv7l``."""
    uname = _row(platform)[3]
    return "armv7l" if uname.startswith("armv") else uname


def zig_target(platform: Platform, libc: str = "musl") -> str:
    """``zig cc -target`` value: ``aarch64-linux-musl``, ``arm-linux-gnueabihf``, and with a
    glibc floor ``aarch64-linux-gnu.2.28`` (zig links against that glibc's symbols)."""
    _row(platform)
    arch = _ZIG_ARCH[platform.arch]
    abi = "musl" if libc == "musl" else "gnu"
    if platform.arch == "arm":
        abi += "eabihf"
    floor = libc.partition(".")[2] if abi.startswith("gnu") else ""
    return f"{arch}-linux-{abi}" + (f".{floor}" if floor else "")
