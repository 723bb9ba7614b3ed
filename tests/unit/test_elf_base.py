"""A base image read from its layers (paths, libraries, glibc version) and the check of an
ELF header against it: each failure names the binary, the base and the fix."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from crossplan.backends.elf import EM_AARCH64, ElfHeader, read_elf
from crossplan.backends.elf_base import (
    SCRATCH,
    BaseRuntime,
    check_against_base,
    runtime_from_layers,
)
from crossplan.errors import StepFailed

HOST_LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")


def layer(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def dyn(needed: tuple[str, ...] = ("libc.so.6",), glibc: tuple[int, ...] | None = (2, 34),
        interp: str = "/lib/ld-linux-aarch64.so.1") -> ElfHeader:
    return ElfHeader(64, True, EM_AARCH64, 3, interp, needed, None, glibc, None, True)


def test_usrmerged_base_resolves_loader_and_libc() -> None:
    libc = HOST_LIBC.read_bytes()
    base = runtime_from_layers("deb", [
        layer({}, {"lib": "usr/lib"}),
        layer({"usr/lib/ld-linux-aarch64.so.1": b"x", "usr/lib/aarch64-linux-gnu/libc.so.6": libc,
               "usr/lib/aarch64-linux-gnu/libz.so.1.2.13": b"z"},
              {"usr/lib/aarch64-linux-gnu/libz.so.1": "libz.so.1.2.13"}),
    ])
    assert "/usr/lib/ld-linux-aarch64.so.1" in base.paths
    assert {"libc.so.6", "libz.so.1"} <= base.libraries
    assert base.glibc == read_elf(HOST_LIBC).glibc_defined
    check_against_base(dyn(("libz.so.1", "libc.so.6"), interp="/lib/ld-linux-aarch64.so.1"),
                       base, step="img", binary="app")


def test_whiteout_removes_a_library() -> None:
    base = runtime_from_layers("b", [
        layer({"usr/lib/libz.so.1": b"z"}), layer({"usr/lib/.wh.libz.so.1": b""}),
    ])
    assert "libz.so.1" not in base.libraries


@pytest.mark.parametrize(("header", "base", "words"), [
    (dyn(), SCRATCH, ["scratch (no libc)", "dynamically linked", 'libc = "musl"']),
    (dyn(glibc=(2, 38)), BaseRuntime("old", frozenset({"/lib/ld-linux-aarch64.so.1"}),
                                     frozenset({"libc.so.6"}), (2, 36)),
     ["needs GLIBC_2.38", "glibc 2.36", 'libc = "gnu.2.36"']),
    (dyn(("libz.so.1", "libc.so.6")), BaseRuntime(
        "slim", frozenset({"/lib/ld-linux-aarch64.so.1"}), frozenset({"libc.so.6"}), (2, 36)),
     ["needs libz.so.1", "link = \"static\""]),
    (dyn(), BaseRuntime("alpine", frozenset({"/lib/ld-musl-aarch64.so.1"}), frozenset(),
                        None, True), ["loader /lib/ld-linux-aarch64.so.1 is not in the base"]),
])
def test_failures_name_binary_and_fix(header: ElfHeader, base: BaseRuntime,
                                      words: list[str]) -> None:
    with pytest.raises(StepFailed) as exc:
        check_against_base(header, base, step="img", binary="hello:hello (linux/arm64)")
    text = exc.value.render()
    assert "'hello:hello (linux/arm64)'" in text and "img" in text
    for w in words:
        assert w in text


def test_static_binaries_pass_everywhere() -> None:
    static = ElfHeader(64, True, EM_AARCH64, 2)
    assert static.static and static.linkage == "static"
    check_against_base(static, SCRATCH, step="img", binary="x")


def test_an_opaque_whited_out_libc_dir_is_not_trusted() -> None:
    """A later layer empties the lib dir with an opaque whiteout: the old libc is gone,
    the same layer's new library stays, and a glibc binary is refused."""
    base = runtime_from_layers("b", [
        layer({"lib/ld-linux-aarch64.so.1": b"x", "lib/aarch64/libc.so.6": HOST_LIBC.read_bytes()}),
        layer({"lib/aarch64/.wh..wh..opq": b"", "lib/aarch64/libz.so.1": b"z"}),
    ])
    assert base.glibc is None
    assert "libc.so.6" not in base.libraries and "libz.so.1" in base.libraries
    assert not base.has("/lib/aarch64/libc.so.6")
    with pytest.raises(StepFailed, match="the base has none"):
        check_against_base(dyn(), base, step="img", binary="app")


def test_libc_so_6_linked_to_a_versioned_file_is_read() -> None:
    """glibc < 2.34 ships libc.so.6 -> libc-2.31.so: the version comes from the target."""
    base = runtime_from_layers("old", [
        layer({"lib/aarch64/libc-2.31.so": HOST_LIBC.read_bytes()},
              {"lib/aarch64/libc.so.6": "libc-2.31.so"}),
    ])
    assert base.glibc == read_elf(HOST_LIBC).glibc_defined
