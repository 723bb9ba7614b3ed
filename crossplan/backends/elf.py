"""Read an ELF file with pyelftools (machine, class, interpreter, NEEDED libraries, the highest
GLIBC_* version it requires) and check it matches a platform."""

from __future__ import annotations

import io
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection, DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import ENUM_E_MACHINE, ENUM_E_TYPE
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection
from elftools.elf.segments import InterpSegment

from crossplan.errors import StepFailed
from crossplan.platforms import Platform, build_platform

__all__ = [
    "EM_386",
    "EM_AARCH64",
    "EM_ARM",
    "EM_PPC64",
    "EM_RISCV",
    "EM_S390",
    "EM_X86_64",
    "ElfHeader",
    "check_elf",
    "expected_machine",
    "glibc_version",
    "parse_elf",
    "read_elf",
    "version_text",
]

EM_386 = 3
EM_PPC64 = 21
EM_S390 = 22
EM_ARM = 40
EM_X86_64 = 62
EM_AARCH64 = 183
EM_RISCV = 243

MACHINE_NAMES = {
    EM_386: "x86 (i386)",
    EM_PPC64: "PowerPC64",
    EM_S390: "s390x",
    EM_ARM: "32-bit ARM",
    EM_X86_64: "x86-64",
    EM_AARCH64: "AArch64",
    EM_RISCV: "RISC-V",
}
# arch -> (e_machine, ELF class, little endian)
_EXPECTED = {
    "amd64": (EM_X86_64, 64, True),
    "arm64": (EM_AARCH64, 64, True),
    "arm": (EM_ARM, 32, True),
    "386": (EM_386, 32, True),
    "riscv64": (EM_RISCV, 64, True),
    "ppc64le": (EM_PPC64, 64, True),
    "s390x": (EM_S390, 64, False),
}
_GLIBC = re.compile(r"^GLIBC_(\d+)\.(\d+)(?:\.(\d+))?$")

Version = tuple[int, ...]
T = TypeVar("T")


def glibc_version(name: str) -> Version | None:
    """``GLIBC_2.28`` -> ``(2, 28)``; None for other version names (GLIBC_PRIVATE...)."""
    m = _GLIBC.match(name)
    return tuple(int(g) for g in m.groups() if g is not None) if m else None


def version_text(version: Version) -> str:
    return ".".join(str(v) for v in version)


@dataclass(frozen=True)
class ElfHeader:
    """What an ELF file says about where it runs: its machine and class, whether it is linked
    dynamically (an interpreter), the libraries it needs and the glibc versions it requires
    (``glibc``: the highest GLIBC_* it needs; ``glibc_defined``: the highest a libc defines)."""

    elf_class: int  # 32 or 64
    little_endian: bool
    machine: int
    type: int  # 2 executable, 3 shared object / PIE
    interpreter: str | None = None  # PT_INTERP: set for dynamically linked executables
    needed: tuple[str, ...] = ()  # DT_NEEDED, in order
    soname: str | None = None
    glibc: Version | None = None
    glibc_defined: Version | None = None
    dynamic: bool = False  # has a dynamic section (a PIE may have one and no interpreter)

    @property
    def machine_name(self) -> str:
        return MACHINE_NAMES.get(self.machine, f"machine {self.machine}")

    @property
    def static(self) -> bool:
        """Runs without a loader or any shared library (static, or static-pie)."""
        return self.interpreter is None and not self.needed

    @property
    def describe(self) -> str:
        """``x86-64``; ``32-bit x86-64`` when the class is unusual for the machine."""
        usual = {m: c for m, c, _ in _EXPECTED.values()}.get(self.machine)
        name = self.machine_name
        if usual is not None and usual != self.elf_class:
            name = f"{self.elf_class}-bit {name}"
        if self.machine == EM_PPC64 and not self.little_endian:
            name += " (big-endian)"
        return name

    @property
    def linkage(self) -> str:
        """``static`` or ``dynamic (/lib/ld-linux-aarch64.so.1; libz.so.1, libc.so.6)``."""
        if self.static:
            return "static"
        return f"dynamic ({self.interpreter or 'no interpreter'}; {', '.join(self.needed)})"


def parse_elf(data: bytes) -> ElfHeader:
    """Parse ``data`` (a whole file, or at least its headers); ValueError when not ELF."""
    _magic(data)
    return _read(io.BytesIO(data))


def read_elf(path: Path) -> ElfHeader:
    """Read ``path`` (streamed: only the headers and dynamic sections are loaded). The
    headers of a file unchanged since it was last read (same inode, size, mtime, ctime) are
    remembered: a binary checked when its step collected it is not parsed again when the
    image that copies it checks it in the same run (pyelftools holds the GIL)."""
    with path.open("rb") as f:
        st = os.fstat(f.fileno())
        ident = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with _read_lock:
            known = _headers.get(ident)
        if known is not None:
            return known
        _magic(f.read(20))
        f.seek(0)
        header = _read(f)
    with _read_lock:
        _headers[ident] = header
        while len(_headers) > _REMEMBERED:
            del _headers[next(iter(_headers))]
    return header


_REMEMBERED = 256
_headers: dict[tuple[object, ...], ElfHeader] = {}
_read_lock = threading.Lock()


def _magic(data: bytes) -> None:
    if len(data) < 20 or data[:4] != b"\x7fELF":
        raise ValueError(f"not an ELF file (starts with {data[:4]!r})")
    if data[4] not in (1, 2) or data[5] not in (1, 2):
        raise ValueError("corrupt ELF header (bad class or byte order)")


def _machine(value: object) -> int:
    if isinstance(value, int):
        return value
    return int(ENUM_E_MACHINE.get(str(value), -1))


def _read(stream: IO[bytes]) -> ElfHeader:
    try:
        elf = ELFFile(stream)
        e_type = elf["e_type"]
        etype = e_type if isinstance(e_type, int) else int(ENUM_E_TYPE.get(e_type, 0))
        interpreter: str | None = None
        needed: list[str] = []
        soname: str | None = None
        dynamic = False
        for seg in _safe(elf.iter_segments):
            if isinstance(seg, InterpSegment):
                interpreter = seg.get_interp_name()
        dyn_tags: DynamicSection | DynamicSegment | None = None
        for sec in _safe(elf.iter_sections):
            if isinstance(sec, DynamicSection):
                dyn_tags = sec
                break
        if dyn_tags is None:
            dyn_tags = next((s for s in _safe(elf.iter_segments)
                             if isinstance(s, DynamicSegment)), None)
        if dyn_tags is not None:
            dynamic = True
            for tag in dyn_tags.iter_tags():
                if tag.entry.d_tag == "DT_NEEDED":
                    needed.append(str(getattr(tag, "needed", "")))
                elif tag.entry.d_tag == "DT_SONAME":
                    soname = str(getattr(tag, "soname", ""))
        need, defined = _glibc_versions(elf)
        return ElfHeader(
            elf.elfclass, elf.little_endian, _machine(elf["e_machine"]), etype, interpreter,
            tuple(needed), soname, need, defined, dynamic,
        )
    except (ELFError, ValueError, KeyError, OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"a corrupt ELF file ({exc})") from None


def _safe(items: Callable[[], Iterable[T]]) -> list[T]:
    """The items of a pyelftools iterator, [] where the file has none (truncated headers)."""
    try:
        return list(items())
    except (ELFError, ValueError, KeyError, OSError):
        return []


def _glibc_versions(elf: ELFFile) -> tuple[Version | None, Version | None]:
    """(highest GLIBC_* required from any library, highest GLIBC_* this file defines)."""
    need: Version | None = None
    defined: Version | None = None
    for sec in _safe(elf.iter_sections):
        if isinstance(sec, GNUVerNeedSection):
            for _lib, auxes in sec.iter_versions():
                for aux in auxes:
                    v = glibc_version(aux.name)
                    if v is not None and (need is None or v > need):
                        need = v
        elif isinstance(sec, GNUVerDefSection):
            for _vd, auxes in sec.iter_versions():
                for aux in auxes:
                    v = glibc_version(aux.name)
                    if v is not None and (defined is None or v > defined):
                        defined = v
    return need, defined


def expected_machine(platform: Platform) -> tuple[int, int, bool]:
    """``(e_machine, class, little_endian)``: linux/arm64 -> ``(EM_AARCH64, 64, True)``."""
    try:
        return _EXPECTED[platform.arch]
    except KeyError:
        raise ValueError(f"no ELF machine known for platform {platform}") from None


def check_elf(
    path: Path, platform: Platform, *, build: Platform | None = None, step: str | None = None,
    name: str | None = None, glibc_floor: Version | None = None,
) -> ElfHeader:
    """Raise StepFailed unless ``path`` is an ELF file for ``platform``'s machine and class
    (and, with ``glibc_floor``, needs no GLIBC_* symbol version newer than it). ``name``:
    what to call the file in errors; default: its file name."""
    label = name or path.name
    try:
        header = read_elf(path)
    except ValueError as exc:
        raise StepFailed(
            f"{label} is {exc} but the target is {platform}",
            step=step,
            hint="declare only compiled binaries as executables",
        ) from None
    machine, elf_class, little = expected_machine(platform)
    if (header.machine, header.elf_class, header.little_endian) == (machine, elf_class, little):
        if glibc_floor is not None and header.glibc is not None and header.glibc > glibc_floor:
            floor = version_text(glibc_floor)
            raise StepFailed(
                f"{label} needs GLIBC_{version_text(header.glibc)} but the step's libc floor "
                f"is gnu.{floor}",
                step=step,
                hint=f"build with zig (compiler = \"zig\"), whose -target <arch>-linux-gnu.{floor}"
                " links against that glibc's symbols, or raise the floor",
            )
        return header
    name = header.describe
    article = "an" if name[0] in "aeioAEIORSx" else "a"
    text = f"{label} is {article} {name} executable but the target is {platform}"
    host = build or build_platform()
    host_match = host.arch in _EXPECTED and expected_machine(host)[:2] == (
        header.machine,
        header.elf_class,
    )
    if host_match:
        raise StepFailed(
            text + ": the toolchain built for the host",
            step=step,
            hint="the build ignored the cross compiler: use $(CC)/$(CFLAGS)/$(LDFLAGS) "
            "from the environment, and don't hard-code gcc or cc",
        )
    raise StepFailed(text, step=step)
