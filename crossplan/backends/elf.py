"""Read an ELF header (class, byte order, machine, interpreter) and check it matches a platform."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

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
    "parse_elf",
    "read_elf",
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
_PT_INTERP = 3


@dataclass(frozen=True)
class ElfHeader:
    """The parts of an ELF file that say which machine runs it."""

    elf_class: int  # 32 or 64
    little_endian: bool
    machine: int
    type: int  # 2 executable, 3 shared object / PIE
    interpreter: str | None = None  # PT_INTERP: set for dynamically linked executables

    @property
    def machine_name(self) -> str:
        return MACHINE_NAMES.get(self.machine, f"machine {self.machine}")

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


def parse_elf(data: bytes) -> ElfHeader:
    """Parse a header (and PT_INTERP when present in ``data``); ValueError when not ELF."""
    if len(data) < 20 or data[:4] != b"\x7fELF":
        raise ValueError(f"not an ELF file (starts with {data[:4]!r})")
    if data[4] not in (1, 2) or data[5] not in (1, 2):
        raise ValueError("corrupt ELF header (bad class or byte order)")
    elf_class = 32 if data[4] == 1 else 64
    end = "<" if data[5] == 1 else ">"
    e_type, e_machine = struct.unpack_from(end + "HH", data, 16)
    return ElfHeader(elf_class, end == "<", e_machine, e_type, _interpreter(data, elf_class, end))


def _interpreter(data: bytes, elf_class: int, end: str) -> str | None:
    try:
        if elf_class == 64:
            (phoff,) = struct.unpack_from(end + "Q", data, 32)
            phentsize, phnum = struct.unpack_from(end + "HH", data, 54)
        else:
            (phoff,) = struct.unpack_from(end + "I", data, 28)
            phentsize, phnum = struct.unpack_from(end + "HH", data, 42)
        for i in range(phnum):
            at = phoff + i * phentsize
            if struct.unpack_from(end + "I", data, at)[0] != _PT_INTERP:
                continue
            if elf_class == 64:
                offset = struct.unpack_from(end + "Q", data, at + 8)[0]
                size = struct.unpack_from(end + "Q", data, at + 32)[0]
            else:
                offset = struct.unpack_from(end + "I", data, at + 4)[0]
                size = struct.unpack_from(end + "I", data, at + 16)[0]
            return data[offset : offset + size].split(b"\0")[0].decode(errors="replace")
    except struct.error:
        return None
    return None


def read_elf(path: Path) -> ElfHeader:
    """Read ``path``'s header (the first 64 KiB hold it and the program headers)."""
    with path.open("rb") as f:
        return parse_elf(f.read(65536))


def expected_machine(platform: Platform) -> tuple[int, int, bool]:
    """``(e_machine, class, little_endian)``: linux/arm64 -> ``(EM_AARCH64, 64, True)``."""
    try:
        return _EXPECTED[platform.arch]
    except KeyError:
        raise ValueError(f"no ELF machine known for platform {platform}") from None


def check_elf(
    path: Path, platform: Platform, *, build: Platform | None = None, step: str | None = None,
    name: str | None = None,
) -> ElfHeader:
    """Raise StepFailed unless ``path`` is an ELF file for ``platform``'s machine and class
    (``name``: what to call the file in errors; default: its file name)."""
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
