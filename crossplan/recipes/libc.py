"""The libc contract of compile steps: ``libc = "musl" | "gnu" | "gnu.2.31"`` and ``link =
"static" | "dynamic"``, parsed, and their defaults resolved from the image bases a step's
binaries are copied into (pure: the recipe alone decides)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator

from crossplan.recipes.rules import Violation

__all__ = [
    "Libc",
    "Link",
    "base_libc",
    "check_libc",
    "libc_floor",
    "libc_kind",
    "resolve_defaults",
]

_LIBC = re.compile(r"^(musl|gnu)(?:\.(2\.\d{1,3}))?$")
# Bases known by name: without a loader or libc (only static binaries start there), with
# musl, with glibc. Anything else (a local oci: layout, busybox...) is "unknown": the image
# step's ELF check reads its layers instead.
_STATIC = ("distroless/static", "busybox")
_MUSL = ("alpine", "musl")
_GLIBC = ("debian", "ubuntu", "distroless/base", "distroless/cc", "distroless/java",
          "distroless/python", "fedora", "centos", "rockylinux", "almalinux", "amazonlinux",
          "ubi8", "ubi9", "bookworm", "bullseye", "trixie", "glibc")


def check_libc(value: str | None) -> str | None:
    if value is None:
        return None
    m = _LIBC.match(value)
    if m is None or (m.group(1) == "musl" and m.group(2)):
        raise Violation(
            f"libc {value!r} is not a libc this tool knows",
            'use "musl" (static, runs anywhere), "gnu" (glibc), or "gnu.2.31" (glibc, needing '
            "no symbol newer than 2.31)",
        )
    return value


Libc = Annotated[str | None, AfterValidator(check_libc)]
Link = Literal["static", "dynamic"] | None


def libc_kind(libc: str) -> str:
    """``gnu.2.28`` -> ``gnu``; ``musl`` -> ``musl``."""
    return libc.split(".", 1)[0]


def libc_floor(libc: str | None) -> tuple[int, ...] | None:
    """``gnu.2.28`` -> ``(2, 28)``; None without a version floor."""
    if not libc or "." not in libc:
        return None
    return tuple(int(p) for p in libc.split(".", 1)[1].split("."))


def base_libc(base: str) -> str:
    """What a base image offers, by its name: ``none`` (scratch, distroless static),
    ``musl`` (alpine), ``gnu`` (Debian, Ubuntu, distroless base/cc...), else ``unknown``."""
    name = base.split("@", 1)[0].lower()
    if "glibc" in name:
        return "gnu"
    if name == "scratch" or any(s in name for s in _STATIC):
        return "none"
    if any(s in name for s in _MUSL):
        return "musl"
    if any(s in name for s in _GLIBC):
        return "gnu"
    return "unknown"


def _consumers(steps: Mapping[str, Any], sid: str) -> list[str]:
    """What each image step copying ``sid``'s outputs offers (``base_libc``)."""
    return [base_libc(s.base) for s in steps.values()
            if getattr(s, "kind", "") == "image" and any(c.from_ == sid for c in s.copy_)]


def resolve_defaults(steps: dict[str, Any]) -> dict[str, Any]:
    """Compile steps with their libc/link defaults filled in (explicit values win):

    - C: ``gnu`` when an image known to have glibc takes its binaries, else ``musl``
      (static: runs on any base);
    - Rust: ``gnu`` (the std Debian and rustup ship), ``musl`` for a musl base; linked
      statically (``+crt-static``) when images take it and none is known to have glibc;
    - Go with cgo: ``musl`` (static) when images take it and none is known to have glibc.
    A step copied into no image keeps the defaults it always had."""
    out = dict(steps)
    for sid, step in steps.items():
        kind = getattr(step, "kind", "")
        if kind not in ("c", "rust", "go"):
            continue
        bases = _consumers(steps, sid)
        update: dict[str, Any] = {}
        if step.libc is None and step.sysroot:  # Debian sysroots hold glibc libraries
            update["libc"] = "gnu"
        elif step.libc is None:
            if kind == "c":
                update["libc"] = "gnu" if "gnu" in bases else "musl"
            elif kind == "rust":
                update["libc"] = "musl" if bases and set(bases) == {"musl"} else "gnu"
            elif step.cgo and bases and "gnu" not in bases:
                update["libc"] = "musl"
        libc = update.get("libc", step.libc)
        if (step.link is None and kind == "rust" and libc and libc_kind(libc) == "gnu"
                and bases and not set(bases) & {"gnu", "musl"}):
            update["link"] = "static"
        if update:
            out[sid] = step.model_copy(update=update)
    return out
