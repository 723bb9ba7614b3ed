"""What a base image offers a binary at run time (loader paths, glibc version, shared
libraries), read from its layers, and the check of one ELF file against it."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO

from crossplan.errors import StepFailed

from .elf import ElfHeader, Version, parse_elf, version_text
from .oci.layer_stack import Entry, LayerSource, apply_layers

__all__ = ["SCRATCH", "BaseRuntime", "check_against_base", "runtime_from_layers"]

_LIB_DIRS = ("lib", "lib64", "usr/lib", "usr/lib64", "usr/local/lib")
_MAX_LIBC = 64 << 20  # a libc.so.6 bigger than this is not read
_LIBC_FILE = re.compile(r"libc-[0-9.]+\.so")  # glibc < 2.34: libc.so.6 -> libc-2.31.so


@dataclass(frozen=True)
class BaseRuntime:
    """A base image as the dynamic loader sees it: which paths exist (``paths``, symlinks
    resolved), which shared libraries are found by name, which glibc (or musl) it has."""

    name: str
    paths: frozenset[str] = field(default_factory=frozenset)  # absolute, normalized
    libraries: frozenset[str] = field(default_factory=frozenset)  # file names in lib dirs
    glibc: Version | None = None  # the highest GLIBC_* its libc.so.6 defines
    musl: bool = False
    links: tuple[tuple[str, str], ...] = ()  # symlinks (path, target), to resolve paths

    def has(self, path: str) -> bool:
        """``path`` exists in the image (following its symlinks: /lib -> usr/lib)."""
        return _resolve(posixpath.normpath(path), dict(self.links)) in self.paths

    @property
    def has_libc(self) -> bool:
        return self.glibc is not None or self.musl

    def describe(self) -> str:
        if self.glibc is not None:
            return f"{self.name} (glibc {version_text(self.glibc)})"
        if self.musl:
            return f"{self.name} (musl)"
        return f"{self.name} (no libc)"


SCRATCH = BaseRuntime("scratch")


def _libc_candidate(name: str) -> bool:
    return name.startswith("libc.so") or bool(_LIBC_FILE.fullmatch(name))


def _read_libc(entry: Entry, stream: IO[bytes]) -> bytes | None:
    """A candidate libc's bytes (libc.so.6, libc-2.31.so); nothing else is read."""
    if _libc_candidate(posixpath.basename(entry.path)) and entry.size < _MAX_LIBC:
        return stream.read()
    return None


def runtime_from_layers(name: str, layers: Iterable[LayerSource]) -> BaseRuntime:
    """Apply ``layers`` (tar, optionally gzip; bottom first, whiteouts and opaque
    directories honoured) and read what the loader would find: paths, library names,
    libc.so.6's glibc version."""
    stack = apply_layers(layers, _read_libc)
    files = {"/" + p for p, e in stack.entries.items() if e.kind in ("file", "hardlink")}
    links = {"/" + p: e.link for p, e in stack.entries.items() if e.kind == "symlink"}
    contents = {"/" + p: data for p, data in stack.read.items()}
    resolved = {p: _resolve(p, links) for p in [*files, *links]}
    paths = frozenset(r for r in resolved.values() if r in files)
    lib_dirs = {_resolve("/" + d, links) for d in _LIB_DIRS}
    libraries = frozenset(
        posixpath.basename(p) for p, r in resolved.items()
        if r in files and _in_lib_dir(_resolve(posixpath.dirname(p), links), lib_dirs)
    )
    glibc: Version | None = None
    for p, r in sorted(resolved.items()):
        content = contents.get(r)
        if posixpath.basename(p) == "libc.so.6" and content:
            try:
                glibc = parse_elf(content).glibc_defined or glibc
            except ValueError:
                continue
    musl = any(posixpath.basename(p).startswith("ld-musl-") for p in paths)
    return BaseRuntime(name, paths, libraries, glibc, musl, tuple(sorted(links.items())))


def _in_lib_dir(directory: str, lib_dirs: set[str]) -> bool:
    return any(directory == d or posixpath.dirname(directory) == d for d in lib_dirs)


def _resolve(path: str, links: dict[str, str], depth: int = 0) -> str:
    """``path`` with every symlinked component resolved within the image."""
    if depth > 20:
        return path
    parts = path.strip("/").split("/")
    cur = "/"
    for i, part in enumerate(parts):
        nxt = posixpath.join(cur, part)
        if nxt in links:
            target = links[nxt]
            target = target if target.startswith("/") else posixpath.join(cur, target)
            rest = "/".join(parts[i + 1:])
            full = posixpath.normpath(posixpath.join(target, rest) if rest else target)
            return _resolve(full, links, depth + 1)
        cur = nxt
    return posixpath.normpath(cur)


def check_against_base(
    header: ElfHeader, base: BaseRuntime, *, step: str, binary: str, file: str | None = None,
) -> None:
    """StepFailed when ``binary`` cannot start on ``base``: a loader it lacks, a newer glibc
    than it has, a NEEDED library it does not ship. The hint names the fix."""
    if header.static:
        return
    where = f"'{binary}' in {base.describe()}"
    static_fix = ('build it statically: libc = "musl" on the compile step (or link = '
                  '"static"), or use a base image with glibc')
    if header.interpreter and not base.has(header.interpreter):
        if not base.has_libc:
            raise StepFailed(
                f"{where}: it is dynamically linked ({header.interpreter}) but the base has no "
                "dynamic loader or libc, so the container would fail to start with 'no such "
                "file or directory'", step=step, file=file, hint=static_fix,
            )
        raise StepFailed(
            f"{where}: its loader {header.interpreter} is not in the base image",
            step=step, file=file,
            hint='match the base\'s libc: libc = "musl" for a musl base, "gnu" for a glibc '
            "one, or link statically",
        )
    if header.glibc is not None:
        if base.glibc is None:
            raise StepFailed(
                f"{where}: it needs glibc (GLIBC_{version_text(header.glibc)}) and the base has "
                "none", step=step, file=file, hint=static_fix,
            )
        if header.glibc > base.glibc:
            raise StepFailed(
                f"{where}: it needs GLIBC_{version_text(header.glibc)} but the base has glibc "
                f"{version_text(base.glibc)} ('version GLIBC_{version_text(header.glibc)} "
                "not found' at start)", step=step, file=file,
                hint=f'set a glibc floor on the compile step: libc = "gnu.'
                f'{version_text(base.glibc)}", or use a newer base',
            )
    missing = [lib for lib in header.needed if lib not in base.libraries]
    if missing:
        raise StepFailed(
            f"{where}: needs {', '.join(missing)}, which the base image does not have",
            step=step, file=file,
            hint="install those libraries in the base, or link them statically "
            '(link = "static" against the sysroot\'s .a files)',
        )
