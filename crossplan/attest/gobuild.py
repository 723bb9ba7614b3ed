"""Go modules compiled into a binary, read from its ``.go.buildinfo`` section (what
``go version -m`` prints): the main module, each dependency with version and sum, build
settings. Format (Go >= 1.18): a 32-byte header (magic, pointer size, flags) followed by
two varint-prefixed strings, the Go version and the module info; the module info is
framed by 16 sentinel bytes at either end."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["GoBuildInfo", "GoModule", "parse_modinfo", "read_go_buildinfo",
           "read_go_buildinfo_bytes"]

_MAGIC = b"\xff Go buildinf:"
_FLAG_INLINE = 0x2  # strings follow the header (Go >= 1.18)
_SENTINEL = 16


@dataclass(frozen=True)
class GoModule:
    path: str
    version: str
    sum: str = ""
    replaced_by: str = ""  # "path version" of a `=>` replacement


@dataclass(frozen=True)
class GoBuildInfo:
    go_version: str
    path: str  # the main package
    main: GoModule | None
    deps: tuple[GoModule, ...]
    settings: tuple[tuple[str, str], ...] = field(default=())


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data):
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
    raise ValueError("truncated varint")


def parse_modinfo(text: str) -> tuple[str, GoModule | None, tuple[GoModule, ...],
                                      tuple[tuple[str, str], ...]]:
    """(path, main module, deps, build settings) from the tab-separated module info."""
    path, main = "", None
    deps: list[GoModule] = []
    settings: list[tuple[str, str]] = []
    for line in text.splitlines():
        parts = line.split("\t")
        kind = parts[0]
        if kind == "path" and len(parts) > 1:
            path = parts[1]
        elif kind in ("mod", "dep") and len(parts) > 2:
            mod = GoModule(parts[1], parts[2], parts[3] if len(parts) > 3 else "")
            if kind == "mod":
                main = mod
            else:
                deps.append(mod)
        elif kind == "=>" and len(parts) > 2 and deps:
            last = deps[-1]
            deps[-1] = GoModule(last.path, last.version, parts[3] if len(parts) > 3 else "",
                                f"{parts[1]} {parts[2]}")
        elif kind == "build" and len(parts) > 1:
            key, _, value = parts[1].partition("=")
            settings.append((key, value))
    return path, main, tuple(deps), tuple(settings)


def read_go_buildinfo(path: Path) -> GoBuildInfo | None:
    """The build info of a Go ELF binary; None when ``path`` is not one (or predates 1.18)."""
    return read_go_buildinfo_bytes(path.read_bytes())


def read_go_buildinfo_bytes(data: bytes) -> GoBuildInfo | None:
    """``read_go_buildinfo`` of a binary's bytes."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    if not data.startswith(b"\x7fELF"):
        return None
    raw: bytes | None = None
    try:
        section = ELFFile(io.BytesIO(data)).get_section_by_name(".go.buildinfo")
        raw = section.data() if section is not None else None
    except (ELFError, ValueError, OSError):
        raw = None
    if raw is None:  # no section headers (or unreadable ones): find the magic in the data
        at = data.find(_MAGIC)
        if at < 0:
            return None
        raw = data[at:at + (1 << 20)]
    if not raw.startswith(_MAGIC) or len(raw) < 32 or not raw[15] & _FLAG_INLINE:
        return None
    try:
        n, pos = _uvarint(raw, 32)
        version = raw[pos:pos + n].decode()
        n, pos = _uvarint(raw, pos + n)
        mod = raw[pos:pos + n]
    except (ValueError, UnicodeDecodeError):
        return None
    text = mod[_SENTINEL:-_SENTINEL].decode(errors="replace") if len(mod) > 2 * _SENTINEL else ""
    main_path, main, deps, settings = parse_modinfo(text)
    return GoBuildInfo(version, main_path, main, deps, settings)
