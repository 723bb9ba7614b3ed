"""Work dirs: populated with exactly the digested inputs; outputs collected into the store."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossplan.cache.store import Entry, Store
from crossplan.errors import StepFailed
from crossplan.executors.workdir import collect_outputs, new_workdir, populate
from crossplan.hashing import hash_bytes
from crossplan.planner.actions import InputFile
from crossplan.probe.digest import tree_digest


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store")
    yield s
    s.close()


def test_new_workdir_is_inside_the_store_tmp(store: Store) -> None:
    w = new_workdir(store, "step@linux/arm/v7")
    assert w.parent == store.root / "tmp"
    assert w.name.startswith("work-step_linux_arm_v7-")


def test_populate_copies_only_digested_files_with_exec_bits(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "tool").write_text("#!/bin/sh\n")
    os.chmod(src / "bin" / "tool", 0o750)
    (src / "keep.txt").write_text("k")
    (src / "skip.log").write_text("s")
    work = new_workdir(store, "w")
    tree = tree_digest(src, exclude=["*.log"])
    inputs = tuple(InputFile(f.path, f.digest, f.executable, f.link, str(src / f.path))
                   for f in tree.files)
    populate(work, inputs, {}, store)
    files = sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file())
    assert files == ["bin/tool", "keep.txt"]
    assert stat.S_IMODE((work / "bin" / "tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((work / "keep.txt").stat().st_mode) == 0o644


def test_collect_outputs_moves_files_and_trees_into_the_store(store: Store) -> None:
    work = new_workdir(store, "w")
    (work / "dist" / "sub").mkdir(parents=True)
    (work / "dist" / "sub" / "a.txt").write_text("A")
    (work / "dist" / "b.bin").write_bytes(b"B")
    (work / "single").write_text("S")
    os.chmod(work / "single", 0o700)
    files = collect_outputs(work, ("dist", "single"), store, step="s")
    assert [(f.path, f.digest, f.mode) for f in files] == [
        ("dist/b.bin", hash_bytes(b"B"), 0o644),
        ("dist/sub/a.txt", hash_bytes(b"A"), 0o644),
        ("single", hash_bytes(b"S"), 0o755),
    ]
    assert all(store.has_blob(f.digest) for f in files)


def test_symlinks_in_outputs_are_kept_including_links_to_directories(
    store: Store, tmp_path: Path
) -> None:
    work = new_workdir(store, "w")
    (work / "out" / "real").mkdir(parents=True)
    (work / "out" / "real" / "f").write_text("f")
    os.symlink("real", work / "out" / "alias")
    os.symlink("real/f", work / "out" / "flink")
    files = collect_outputs(work, ("out",), store, step="s")
    assert {f.path: f.link for f in files} == {
        "out/alias": "real", "out/flink": "real/f", "out/real/f": None,
    }
    dest = tmp_path / "dest"
    store.materialize(Entry("k", "n", files, None, 0.0, 0.0, {}), dest)
    assert (dest / "out" / "alias" / "f").read_text() == "f"
    assert os.readlink(dest / "out" / "alias") == "real"


def test_missing_declared_output_is_a_step_failure(store: Store) -> None:
    work = new_workdir(store, "w")
    with pytest.raises(StepFailed, match="did not produce declared output 'nope'"):
        collect_outputs(work, ("nope",), store, step="s")
