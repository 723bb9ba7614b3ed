"""Platforms as data: parse and normalize ``os/arch[/variant]`` the way buildx does."""

from __future__ import annotations

import difflib
import platform as _pyplatform
from dataclasses import dataclass

from crossplan.errors import RecipeError

__all__ = ["SUPPORTED", "Platform", "build_platform", "parse_platforms", "reapi_isa"]

# Architectures we know how to target, with their default variant (buildx normalization).
_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armhf": "arm",
    "armel": "arm",
    "arm": "arm",
    "i386": "386",
    "i686": "386",
    "386": "386",
    "riscv64": "riscv64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}

SUPPORTED = (
    "linux/amd64",
    "linux/arm64",
    "linux/arm/v7",
    "linux/arm/v6",
    "linux/riscv64",
    "linux/386",
    "linux/ppc64le",
    "linux/s390x",
)


@dataclass(frozen=True, order=True)
class Platform:
    """A target or build platform: ``Platform("linux", "arm", "v7")``."""

    os: str
    arch: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse and normalize: ``arm64`` == ``linux/arm64`` == ``linux/arm64/v8``.

        Raises RecipeError naming the closest supported platform when unknown.
        """
        raw = text.strip().lower()
        parts = [p for p in raw.split("/") if p]
        if len(parts) == 1:
            parts = ["linux", *parts]
        if not parts or len(parts) > 3:
            raise _unknown(text)
        os_ = parts[0]
        arch = _ARCH_ALIASES.get(parts[1])
        if arch is None:
            raise _unknown(text)
        variant = parts[2] if len(parts) == 3 else ""
        if parts[1] in ("armhf",) and not variant:
            variant = "v7"
        if parts[1] == "armel" and not variant:
            variant = "v6"
        if arch == "arm64" and variant == "v8":
            variant = ""
        if arch == "amd64" and variant == "v1":
            variant = ""
        if arch == "arm" and not variant:
            variant = "v7"
        plat = cls(os_, arch, variant)
        if str(plat) not in SUPPORTED:
            raise _unknown(text)
        return plat

    def __str__(self) -> str:
        return f"{self.os}/{self.arch}/{self.variant}" if self.variant else f"{self.os}/{self.arch}"

    @property
    def slug(self) -> str:
        """Filesystem-safe name: ``linux_arm_v7``."""
        return str(self).replace("/", "_")

    @property
    def arch_variant(self) -> str:
        """``TARGETARCH`` + ``TARGETVARIANT`` as buildx concatenates them: ``armv7``."""
        return self.arch + self.variant

    def build_args(self, prefix: str) -> dict[str, str]:
        """``TARGETPLATFORM``-style variables: prefix is ``TARGET`` or ``BUILD``."""
        return {
            f"{prefix}PLATFORM": str(self),
            f"{prefix}OS": self.os,
            f"{prefix}ARCH": self.arch,
            f"{prefix}VARIANT": self.variant,
        }


def _unknown(text: str) -> RecipeError:
    close = difflib.get_close_matches(text.strip().lower(), SUPPORTED, n=1, cutoff=0.4)
    hint = f"did you mean '{close[0]}'?" if close else "supported: " + ", ".join(SUPPORTED)
    return RecipeError(f"unknown or unsupported platform '{text}'", hint=hint)


def parse_platforms(items: list[str] | tuple[str, ...] | str) -> tuple[Platform, ...]:
    """Parse a list (or a comma-separated string), dropping duplicates, keeping order."""
    if isinstance(items, str):
        items = [i for i in items.split(",") if i.strip()]
    out: list[Platform] = []
    for item in items:
        p = Platform.parse(item)
        if p not in out:
            out.append(p)
    return tuple(out)


def build_platform() -> Platform:
    """The machine we run on."""
    return Platform.parse(_pyplatform.machine())


# REAPI's ISA platform property per GOARCH-style arch (what workers advertise).
_ISA = {"amd64": "x86-64", "arm64": "aarch64", "386": "x86-32", "riscv64": "riscv64",
        "ppc64le": "ppc64le", "s390x": "s390x"}


def reapi_isa(platform: Platform) -> str:
    """REAPI's ISA property for a platform (x86-64, aarch64, armv7l...)."""
    if platform.arch == "arm":
        return f"arm{platform.variant or 'v7'}l"
    return _ISA.get(platform.arch, platform.arch)
