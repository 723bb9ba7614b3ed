"""What a base image offers a binary at run time (loader paths, glibc version, shared
libraries), read from its layers, and the check of one ELF file against it."""

from __future__ import annotations

import io
import posixpath
import tarfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from crossplan.errors import StepFailed

from .elf import ElfHeader, Version, parse_elf, version_text

__all__ = ["SCRATCH", "BaseRuntime", "check_against_base", "runtime_from_layers"]

_LIB_DIRS = ("lib", "lib64", "usr/lib", "usr/lib64", "usr/local/lib")
_MAX_LIBC = 64 << 20  # a libc.so.6 bigger than this is not read


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


def _layer_tar(data: bytes) -> tarfile.TarFile:
    if data[:2] == b"\x1f\x8b":
        data = zlib.decompress(data, 16 + zlib.MAX_WBITS)
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:")


def runtime_from_layers(name: str, layers: Iterable[bytes]) -> BaseRuntime:
    """Apply ``layers`` (tar, optionally gzip; bottom first, whiteouts honoured) and read
    what the loader would find: paths, library names, libc.so.6's glibc version."""
    files: dict[str, bytes | None] = {}  # path -> content of candidate libcs, else None
    links: dict[str, str] = {}
    for data in layers:
        with _layer_tar(data) as tar:
            for m in tar:
                path = posixpath.normpath("/" + m.name.lstrip("./"))
                base = posixpath.basename(path)
                if base.startswith(".wh."):
                    gone = posixpath.join(posixpath.dirname(path), base[4:])
                    for table in (files, links):
                        for p in [p for p in table if p == gone or p.startswith(gone + "/")]:
                            del table[p]
                    continue
                if m.issym():
                    links[path] = m.linkname
                    files.pop(path, None)
                elif m.isfile() or m.islnk():
                    content = None
                    if m.isfile() and base.startswith("libc.so") and m.size < _MAX_LIBC:
                        f = tar.extractfile(m)
                        content = f.read() if f else None
                    files[path] = content
                    links.pop(path, None)
    resolved = {p: _resolve(p, links) for p in [*files, *links]}
    paths = frozenset(r for r in resolved.values() if r in files)
    lib_dirs = {_resolve("/" + d, links) for d in _LIB_DIRS}
    libraries = frozenset(
        posixpath.basename(p) for p, r in resolved.items()
        if r in files and _in_lib_dir(_resolve(posixpath.dirname(p), links), lib_dirs)
    )
    glibc: Version | None = None
    for p, r in resolved.items():
        content = files.get(r)
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
