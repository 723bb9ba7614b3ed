"""Hermetic building blocks as pure functions: staging verifies digests, the sandbox's argv,
the toolchain roots a sandbox binds, and how --check describes a difference."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossplan.cache.store import Entry, OutputFile, Store
from crossplan.executors.check import describe_differences
from crossplan.executors.sandbox import Sandbox
from crossplan.executors.workdir import InputChanged, new_workdir, populate
from crossplan.hashing import copy_hashing, file_digest, hash_bytes
from crossplan.planner.actions import InputFile
from crossplan.planner.facts import TOOLCACHE, WORK_TMP, WORKDIR
from crossplan.probe.toolchains import tool_roots


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store")
    yield s
    s.close()


def test_copy_hashing_returns_the_digest_of_what_it_wrote(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 100_000)
    assert copy_hashing(tmp_path / "a", tmp_path / "b") == file_digest(tmp_path / "a")
    assert (tmp_path / "b").read_bytes() == b"x" * 100_000


def test_staging_fails_when_an_input_changed_since_planning(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("OLD\n")
    planned = InputFile("in.txt", file_digest(src), origin=str(src))
    populate(new_workdir(store, "ok"), (planned,), {}, store)  # unchanged: fine
    src.write_text("NEW\n")
    with pytest.raises(InputChanged, match=r"input changed during the build: in\.txt"):
        populate(new_workdir(store, "changed"), (planned,), {}, store)
    src.unlink()
    with pytest.raises(InputChanged, match="removed"):
        populate(new_workdir(store, "gone"), (planned,), {}, store)


def test_sandbox_argv(tmp_path: Path) -> None:
    sb = Sandbox("/usr/bin/bwrap", tmp_path / "etc")
    sb.prepare()
    assert "root:x:0:0" in (tmp_path / "etc" / "passwd").read_text()
    argv = sb.wrap(("sh", "-c", "true"), workdir=tmp_path / "w", toolcache=tmp_path / "tc",
                   cwd="sub", tools=(str(tmp_path),))
    text = " ".join(argv)
    assert argv[0] == "/usr/bin/bwrap" and argv[-4:] == ["--", "sh", "-c", "true"]
    for flag in ("--unshare-all", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert "--share-net" not in argv
    assert f"--bind {tmp_path / 'w'} {WORKDIR}" in text
    assert f"--bind {tmp_path / 'tc'} {TOOLCACHE}" in text
    assert f"--ro-bind {tmp_path} {tmp_path}" in text  # a declared toolchain root
    assert f"--chdir {WORKDIR}/sub" in text
    assert "/etc/shadow" not in text and "--ro-bind /etc /etc" not in text
    assert "--share-net" in sb.wrap(("true",), workdir=tmp_path, toolcache=tmp_path,
                                    network=True)


def test_sandbox_tmp_is_the_work_dirs_unless_a_tool_lives_under_tmp(tmp_path: Path) -> None:
    """/tmp links to the work dir's .tmp (one mount with it); a toolchain bound at a path
    under /tmp (a store there) needs its mount point made in /tmp: a tmpfs then."""
    sb = Sandbox("/usr/bin/bwrap", tmp_path / "etc")
    outside = Path("/usr/local")  # not a system dir the sandbox binds anyway
    argv = sb.wrap(("true",), workdir=tmp_path, toolcache=tmp_path, tools=(str(outside),))
    text = " ".join(argv)
    assert f"--symlink {WORK_TMP} /tmp" in text and "--tmpfs" not in argv
    under_tmp = tmp_path / "store" / "toolchains" / "zig"  # pytest's tmp_path is under /tmp
    under_tmp.mkdir(parents=True)
    assert str(under_tmp).startswith("/tmp/")
    argv = sb.wrap(("true",), workdir=tmp_path, toolcache=tmp_path, tools=(str(under_tmp),))
    text = " ".join(argv)
    assert "--tmpfs /tmp" in text and f"--symlink {WORK_TMP} /tmp" not in text
    assert text.index("--tmpfs /tmp") < text.index(f"--ro-bind {under_tmp} {under_tmp}")


def test_tool_roots_bind_install_roots_not_system_dirs(tmp_path: Path) -> None:
    goroot = tmp_path / "toolchains" / "go"
    (goroot / "bin").mkdir(parents=True)
    (goroot / "bin" / "go").write_text("")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    roots = tool_roots(
        ((str(goroot / "bin" / "go"), "build"), ("/usr/bin/cp", f"{WORKDIR}/x")),
        {"GOROOT": str(goroot), "GOCACHE": f"{TOOLCACHE}/go", "CC": "/usr/bin/gcc"},
        {"wrap/cc": f"#!/bin/sh\nexec {venv}/bin/python -m ziglang cc \"$@\"\n"},
    )
    assert roots == (str(goroot), str(venv))


def _entry(store: Store, files: dict[str, bytes]) -> Entry:
    out = []
    for path, data in files.items():
        digest = store.put_bytes(data)
        out.append(OutputFile(path, digest, 0o644, len(data)))
    return Entry("k", "n", tuple(out), None, 0.0, time.time(), {})


def test_check_names_file_size_offset_and_elf_section(store: Store, tmp_path: Path) -> None:
    other = Store(tmp_path / "scratch")
    try:
        elf = Path(shutil.which("true") or "/usr/bin/true").read_bytes()
        from elftools.elf.elffile import ELFFile

        with open(shutil.which("true") or "/usr/bin/true", "rb") as f:
            text = ELFFile(f).get_section_by_name(".text")
            offset = text["sh_offset"] + 16
        changed = bytearray(elf)
        changed[offset] ^= 0xFF
        old = _entry(store, {"bin/true": elf, "same.txt": b"a", "gone.txt": b"g"})
        new = _entry(other, {"bin/true": bytes(changed), "same.txt": b"a", "new.txt": b"n"})
        diffs = describe_differences(old, store, new, other)
        assert diffs == [
            f"bin/true: size {len(elf)} vs {len(elf)}, first difference at byte {offset} "
            "(ELF section .text)",
            "gone.txt: missing from the rebuild",
            "new.txt: only in the rebuild",
        ]
        assert describe_differences(old, store, old, store) == []
        assert hash_bytes(b"a") in {f.digest for f in old.files}
    finally:
        other.close()
