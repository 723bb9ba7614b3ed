"""ELF headers parsed from tiny synthesized files, and the platform check's messages."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from crossplan.backends.elf import (
    EM_386,
    EM_AARCH64,
    EM_ARM,
    EM_PPC64,
    EM_RISCV,
    EM_S390,
    EM_X86_64,
    check_elf,
    expected_machine,
    parse_elf,
    read_elf,
)
from crossplan.errors import StepFailed
from crossplan.platforms import Platform

P = Platform.parse
AMD64 = P("linux/amd64")


def elf(machine: int, bits: int = 64, little: bool = True, interp: str | None = None) -> bytes:
    """A minimal ELF executable header, with one PT_INTERP program header when ``interp``."""
    end = "<" if little else ">"
    ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1 if little else 2, 1]) + bytes(9)
    ehsize, phentsize = (52, 32) if bits == 32 else (64, 56)
    phnum = 1 if interp else 0
    if bits == 64:
        head = ident + struct.pack(
            end + "HHIQQQIHHHHHH", 2, machine, 1, 0, ehsize, 0, 0, ehsize, phentsize, phnum, 0, 0, 0
        )
    else:
        head = ident + struct.pack(
            end + "HHIIIIIHHHHHH", 2, machine, 1, 0, ehsize, 0, 0, ehsize, phentsize, phnum, 0, 0, 0
        )
    assert len(head) == ehsize
    if not interp:
        return head
    data = interp.encode() + b"\0"
    offset = ehsize + phentsize
    if bits == 64:
        ph = struct.pack(end + "IIQQQQQQ", 3, 4, offset, 0, 0, len(data), len(data), 1)
    else:
        ph = struct.pack(end + "IIIIIIII", 3, offset, 0, 0, len(data), len(data), 4, 1)
    return head + ph + data


@pytest.mark.parametrize(
    ("platform", "machine", "bits", "little"),
    [
        ("linux/amd64", EM_X86_64, 64, True),
        ("linux/arm64", EM_AARCH64, 64, True),
        ("linux/arm/v7", EM_ARM, 32, True),
        ("linux/arm/v6", EM_ARM, 32, True),
        ("linux/386", EM_386, 32, True),
        ("linux/riscv64", EM_RISCV, 64, True),
        ("linux/ppc64le", EM_PPC64, 64, True),
        ("linux/s390x", EM_S390, 64, False),
    ],
)
def test_expected_machine_and_roundtrip(
    tmp_path: Path, platform: str, machine: int, bits: int, little: bool
) -> None:
    assert expected_machine(P(platform)) == (machine, bits, little)
    path = tmp_path / "bin"
    path.write_bytes(elf(machine, bits, little))
    header = read_elf(path)
    assert (header.machine, header.elf_class, header.little_endian) == (machine, bits, little)
    assert header.interpreter is None
    assert check_elf(path, P(platform)) == header


@pytest.mark.parametrize("bits", [32, 64])
def test_interpreter_is_read(bits: int) -> None:
    machine = EM_ARM if bits == 32 else EM_AARCH64
    header = parse_elf(elf(machine, bits, interp="/lib/ld-linux-aarch64.so.1"))
    assert header.interpreter == "/lib/ld-linux-aarch64.so.1"


def test_host_binary_for_a_cross_target_names_the_cause(tmp_path: Path) -> None:
    path = tmp_path / "hello"
    path.write_bytes(elf(EM_X86_64))
    with pytest.raises(StepFailed) as err:
        check_elf(path, P("linux/arm64"), build=AMD64, step="hello")
    assert err.value.message == (
        "hello is an x86-64 executable but the target is linux/arm64: "
        "the toolchain built for the host"
    )
    assert err.value.exit_code == 1 and err.value.step == "hello"


def test_wrong_cross_arch_and_wrong_class(tmp_path: Path) -> None:
    path = tmp_path / "hello"
    path.write_bytes(elf(EM_ARM, 32))
    with pytest.raises(StepFailed, match=r"^hello is a 32-bit ARM executable but the target is "):
        check_elf(path, P("linux/arm64"), build=AMD64)
    path.write_bytes(elf(EM_AARCH64, 32))
    with pytest.raises(StepFailed, match="is a 32-bit AArch64 executable"):
        check_elf(path, P("linux/arm64"), build=AMD64)
    path.write_bytes(elf(EM_PPC64, 64, little=False))
    with pytest.raises(StepFailed, match=r"PowerPC64 \(big-endian\) executable"):
        check_elf(path, P("linux/ppc64le"), build=AMD64)


def test_not_elf(tmp_path: Path) -> None:
    path = tmp_path / "run.sh"
    path.write_bytes(b"#!/bin/sh\necho hi\n")
    with pytest.raises(StepFailed, match=r"run\.sh is not an ELF file"):
        check_elf(path, AMD64)
    with pytest.raises(ValueError, match="corrupt"):
        parse_elf(b"\x7fELF" + bytes([7, 1]) + bytes(20))
    with pytest.raises(ValueError, match="not an ELF"):
        parse_elf(b"")


def test_truncated_program_headers_are_tolerated() -> None:
    data = elf(EM_AARCH64, interp="/lib/ld.so")
    header = parse_elf(data[:70])
    assert header.machine == EM_AARCH64 and header.interpreter is None


def test_headers_are_remembered_until_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A binary checked by its step is not parsed again by the image that copies it; a file
    rewritten in place (same size, its mtime put back) is read again."""
    import os
    import time

    from crossplan.backends import elf as elf_module

    parsed: list[int] = []
    real = elf_module._read

    def counting(stream: object) -> object:
        parsed.append(1)
        return real(stream)  # type: ignore[arg-type]

    monkeypatch.setattr(elf_module, "_read", counting)
    path = tmp_path / "bin"
    path.write_bytes(elf(EM_X86_64))
    first = read_elf(path)
    assert check_elf(path, P("linux/amd64")) == first and len(parsed) == 1
    before = path.stat()
    time.sleep(0.05)  # past the kernel's coarse clock tick: the change time moves
    path.write_bytes(elf(EM_AARCH64))  # same size, another machine
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert read_elf(path).machine == EM_AARCH64 and len(parsed) == 2
