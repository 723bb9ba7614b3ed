"""How smoke tests run a binary: natively, through qemu-<arch>-static, or through binfmt_misc."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from crossplan.backends.elf import EM_AARCH64, EM_X86_64
from crossplan.backends.smoke import binfmt_enabled, emulator_argv, run_binary
from crossplan.errors import EnvironmentProblem
from crossplan.platforms import Platform

AMD64, ARM64 = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")


def elf(machine: int, interp: str | None = None) -> bytes:
    """A 64-bit little-endian ELF header, plus a PT_INTERP program header when ``interp``."""
    ident = b"\x7fELF\x02\x01\x01" + bytes(9)
    phnum = 1 if interp else 0
    head = ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, 0, 64, 0, 0, 64, 56, phnum, 0, 0, 0)
    if not interp:
        return head
    data = interp.encode() + b"\0"
    return head + struct.pack("<IIQQQQQQ", 3, 4, 120, 0, 0, len(data), len(data), 1) + data


def which_of(*present: str) -> Callable[[str], Path | None]:
    return lambda name: Path("/usr/bin") / name if name in present else None


@pytest.fixture
def static_arm64(tmp_path: Path) -> Path:
    path = tmp_path / "hello"
    path.write_bytes(elf(EM_AARCH64))
    return path


@pytest.fixture
def dynamic_arm64(tmp_path: Path) -> Path:
    path = tmp_path / "hello-dyn"
    path.write_bytes(elf(EM_AARCH64, interp="/lib/ld-linux-aarch64.so.1"))
    return path


def test_native_runs_directly(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(elf(EM_X86_64))
    assert emulator_argv(path, AMD64, build=AMD64, which=which_of()) == ([str(path)], {})


def test_qemu_static_with_sysroot_for_glibc_binaries(
    tmp_path: Path, static_arm64: Path, dynamic_arm64: Path
) -> None:
    which = which_of("qemu-aarch64-static")
    qemu = "/usr/bin/qemu-aarch64-static"
    argv, env = emulator_argv(static_arm64, ARM64, build=AMD64, which=which)
    assert (argv, env) == ([qemu, str(static_arm64)], {})
    (tmp_path / "cross/aarch64-linux-gnu/lib").mkdir(parents=True)
    argv, _ = emulator_argv(
        dynamic_arm64, ARM64, build=AMD64, which=which, cross_root=tmp_path / "cross"
    )
    assert argv == [qemu, "-L", str(tmp_path / "cross/aarch64-linux-gnu"), str(dynamic_arm64)]
    with pytest.raises(EnvironmentProblem, match="libc6-arm64-cross"):
        emulator_argv(dynamic_arm64, ARM64, build=AMD64, which=which, cross_root=tmp_path / "no")


def test_binfmt_when_no_qemu_binary(tmp_path: Path, dynamic_arm64: Path) -> None:
    binfmt = tmp_path / "binfmt"
    binfmt.mkdir()
    (binfmt / "qemu-aarch64").write_text("enabled\ninterpreter /usr/libexec/qemu-binfmt/x\n")
    (binfmt / "qemu-arm").write_text("disabled\n")
    assert binfmt_enabled("aarch64", binfmt) and not binfmt_enabled("arm", binfmt)
    assert not binfmt_enabled("riscv64", binfmt)
    (tmp_path / "cross/aarch64-linux-gnu/lib").mkdir(parents=True)
    argv, env = emulator_argv(
        dynamic_arm64,
        ARM64,
        build=AMD64,
        which=which_of(),
        binfmt_dir=binfmt,
        cross_root=tmp_path / "cross",
    )
    assert argv == [str(dynamic_arm64)]
    assert env == {"QEMU_LD_PREFIX": str(tmp_path / "cross/aarch64-linux-gnu")}


def test_no_emulation_is_an_environment_problem_with_the_fix(
    tmp_path: Path, static_arm64: Path
) -> None:
    with pytest.raises(EnvironmentProblem) as err:
        emulator_argv(static_arm64, ARM64, build=AMD64, which=which_of(), binfmt_dir=tmp_path)
    assert err.value.exit_code == 3
    assert err.value.hint == (
        "`apt install qemu-user-static binfmt-support` then `update-binfmts --enable qemu-aarch64`"
    )


def test_run_binary_natively_returns_code_and_output(tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/sh\necho out; echo err >&2; exit 3\n")
    script.chmod(0o755)
    code, output = run_binary(script, AMD64, build=AMD64)
    assert code == 3 and output.splitlines() == ["out", "err"]
