"""Kept work dirs (executors/stash.py): a step's next run copies only what changed, and sees
exactly its staged inputs whatever the last run left or did to the kept files."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from crossplan.cache.store import STASH, Store
from crossplan.executors import stash
from crossplan.executors.workdir import populate, wait_discarded
from crossplan.hashing import file_digest
from crossplan.planner.actions import InputFile
from crossplan.probe.digest import tree_digest

SLOT = stash.slot("/p/plan.toml", "app@linux/amd64")
Step = Callable[[Path], None]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store")
    yield s
    wait_discarded()  # the dirs a test's runs discarded (`rm -rf` in the background)
    s.close()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "main.go").write_text("package main\n")
    (root / "pkg" / "a.go").write_text("package pkg // a\n")
    (root / "pkg" / "sub" / "b.go").write_text("package sub // b\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "link").symlink_to("main.go")
    return root


def _inputs(src: Path) -> tuple[InputFile, ...]:
    return tuple(InputFile(f.path, f.digest, f.executable, f.link, str(src / f.path))
                 for f in tree_digest(src).files)


def _run(store: Store, src: Path, step: Step | None = None) -> tuple[Path, set[str]]:
    """What the host executor does: claim, stage, (the step), keep. Returns the work dir as
    the step saw it (now under stash/) and the inputs that were not copied."""
    inputs = _inputs(src)
    workdir, kept = stash.claim(store, SLOT, "app", inputs)
    populate(workdir, inputs, {}, store, kept=kept)
    staged = stash.record(workdir, inputs)
    time.sleep(0.01)  # the command starts a few ms after staging (bubblewrap's start)
    started = stash.started()
    if step is not None:
        step(workdir)
    stash.keep(store, SLOT, workdir, staged, started)
    return store.root / STASH / SLOT, set(kept)


def _tree(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel == stash.MANIFEST:  # crossplan's, written after the step
            continue
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = file_digest(p)
    return out


def _expected(src: Path) -> dict[str, str]:
    return {f.path: ("-> " + f.link) if f.link is not None else f.digest
            for f in tree_digest(src).files}


def test_untouched_inputs_are_kept_and_an_edited_one_is_copied(store: Store, src: Path) -> None:
    kept_dir, kept = _run(store, src)
    assert kept == set()  # the first run stages everything
    ino = (kept_dir / "pkg" / "a.go").stat().st_ino
    (src / "main.go").write_text("package main // edited\n")
    kept_dir, kept = _run(store, src)
    assert kept == set(_expected(src)) - {"main.go"}
    assert (kept_dir / "pkg" / "a.go").stat().st_ino == ino  # not copied again
    assert _tree(kept_dir) == _expected(src)


def test_a_kept_input_gets_the_staging_time_as_mtime(store: Store, src: Path) -> None:
    """As a copy would: a make rule comparing two inputs' mtimes sees what a fresh work dir
    shows it, not which of them changed since the last run."""
    kept_dir, _ = _run(store, src)
    os.utime(kept_dir / "pkg" / "a.go", ns=(0, 0))  # as if staged long ago
    inputs = _inputs(src)
    manifest = json.loads((kept_dir / stash.MANIFEST).read_text())
    st = (kept_dir / "pkg" / "a.go").lstat()
    manifest["files"]["pkg/a.go"][4:6] = [st.st_mtime_ns, st.st_ctime_ns]
    manifest["started"] = st.st_ctime_ns + 1
    (kept_dir / stash.MANIFEST).write_text(json.dumps(manifest))
    before = time.time_ns()
    workdir, kept = stash.claim(store, SLOT, "app", inputs)
    assert "pkg/a.go" in kept
    populate(workdir, inputs, {}, store, kept=kept)
    assert (workdir / "pkg" / "a.go").stat().st_mtime_ns >= before - 10_000_000


def test_what_the_step_left_is_gone(store: Store, src: Path) -> None:
    def step(w: Path) -> None:
        (w / "out").mkdir()
        (w / "out" / "app").write_bytes(b"\x7fELF")
        (w / "pkg" / "a.o").write_bytes(b"obj")
        (w / ".home" / ".cache").mkdir(parents=True)
        (w / ".home" / ".cache" / "x").write_text("x")
        (w / "pkg" / "sub" / "gen").mkdir()
        (w / "pkg" / "sub" / "gen" / "z.go").write_text("package gen\n")
        os.symlink("/etc/passwd", w / "pkg" / "passwd")

    _run(store, src, step)
    kept_dir, kept = _run(store, src)
    assert kept == set(_expected(src))
    assert _tree(kept_dir) == _expected(src)
    assert sorted(p.name for p in kept_dir.iterdir()) == [
        stash.MANIFEST, "link", "main.go", "pkg", "run.sh"]


def test_a_staged_file_the_step_changed_is_copied_again(store: Store, src: Path) -> None:
    """Same size, mtime put back: only the ctime shows it, and that is enough."""
    def step(w: Path) -> None:
        f = w / "pkg" / "a.go"
        st = f.stat()
        f.chmod(0o644)
        f.write_text("package pkg // A\n")
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))

    _run(store, src, step)
    kept_dir, kept = _run(store, src)
    assert "pkg/a.go" not in kept and "main.go" in kept
    assert _tree(kept_dir) == _expected(src)


@pytest.mark.parametrize("change", ["chmod", "link", "replace", "xattr"])
def test_any_change_to_a_kept_file_is_seen(store: Store, src: Path, tmp_path: Path,
                                           change: str) -> None:
    def step(w: Path) -> None:
        f = w / "main.go"
        if change == "chmod":
            f.chmod(0o600)
            f.chmod(stat.S_IMODE(f.stat().st_mode) | 0o044)
        elif change == "link":  # a hard link out (an output moved to the store is one)
            os.link(f, w / "out")
            os.replace(w / "out", tmp_path / "elsewhere")
        elif change == "replace":
            (w / "new").write_text("package main\n")
            os.replace(w / "new", f)
        else:
            os.setxattr(f, "user.crossplan", b"1")

    _run(store, src, step)
    kept_dir, kept = _run(store, src)
    assert "main.go" not in kept and "pkg/a.go" in kept
    assert _tree(kept_dir) == _expected(src)


def test_a_file_staged_in_the_tick_the_command_started_is_not_trusted(
    store: Store, src: Path,
) -> None:
    """git's racy rule: the coarse clock at the command's start is not after the file's ctime,
    so a change in that same tick would not show."""
    inputs = _inputs(src)
    workdir, _ = stash.claim(store, SLOT, "app", inputs)
    populate(workdir, inputs, {}, store)
    staged = stash.record(workdir, inputs)
    racy = staged.files["pkg/a.go"].ctime_ns
    stash.keep(store, SLOT, workdir, staged, racy)
    _, kept = stash.claim(store, SLOT, "app", inputs)
    assert "pkg/a.go" not in kept
    assert all(staged.files[p].ctime_ns < racy for p in kept)


def test_a_directory_the_step_changed_gets_its_mode_back(store: Store, src: Path) -> None:
    kept_dir, _ = _run(store, src)
    mode = stat.S_IMODE((kept_dir / "pkg").stat().st_mode)
    _run(store, src, lambda w: (w / "pkg").chmod(0o700))
    inputs = _inputs(src)
    workdir, kept = stash.claim(store, SLOT, "app", inputs)
    assert "pkg/a.go" in kept
    assert stat.S_IMODE((workdir / "pkg").stat().st_mode) == mode


def test_directory_xattrs_present_at_staging_are_fine_and_new_ones_are_not(
    store: Store, src: Path,
) -> None:
    """A label every new directory gets (SELinux, a default ACL) is recorded at staging and
    still there: the dir is kept; one the step adds gives a fresh dir."""
    inputs = _inputs(src)
    workdir, _ = stash.claim(store, SLOT, "app", inputs)
    populate(workdir, inputs, {}, store)
    os.setxattr(workdir / "pkg", "user.label", b"system_u:object_r")
    staged = stash.record(workdir, inputs)
    time.sleep(0.01)
    stash.keep(store, SLOT, workdir, staged, stash.started())
    _, kept = _run(store, src, lambda w: os.setxattr(w / "pkg" / "sub", "user.x", b"1"))
    assert "pkg/a.go" in kept
    _, kept = _run(store, src)
    assert kept == set()


@pytest.mark.parametrize("to", ["outside", "inside"])
def test_a_directory_swapped_for_a_symlink_is_not_followed(
    store: Store, src: Path, tmp_path: Path, to: str,
) -> None:
    """``pkg`` moved away and a symlink in its place, to a directory outside (what it points
    at is left alone) or to where ``pkg`` went (its files' stat still match through the link:
    the whole dir is staged afresh)."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "a.go").write_text("mine\n")

    def step(w: Path) -> None:
        os.rename(w / "pkg", w / "old")
        os.symlink(victim if to == "outside" else "old", w / "pkg")

    _run(store, src, step)
    kept_dir, kept = _run(store, src)
    assert "pkg/a.go" not in kept
    assert kept == (set() if to == "inside" else {"main.go", "run.sh", "link"})
    assert (victim / "a.go").read_text() == "mine\n"
    assert _tree(kept_dir) == _expected(src)


def test_a_manifest_the_step_wrote_is_not_read(store: Store, src: Path) -> None:
    """The step rewrites an input and writes a manifest vouching for it: crossplan writes its
    own after the step, so the next run copies the input again."""
    planned = _expected(src)["main.go"]

    def forge(w: Path) -> None:
        (w / "main.go").write_text("package evil\n")
        st = (w / "main.go").lstat()
        files = {"main.go": [planned, False, st.st_ino, st.st_size, st.st_mtime_ns,
                             st.st_ctime_ns, st.st_mode]}
        (w / stash.MANIFEST).write_text(json.dumps(
            {"v": 1, "started": 2**62, "dirs": {"": w.lstat().st_mode}, "files": files}))

    _run(store, src, forge)
    kept_dir, kept = _run(store, src)
    assert "main.go" not in kept
    assert (kept_dir / "main.go").read_text() == "package main\n"


def test_a_manifest_path_made_a_directory_keeps_nothing(store: Store, src: Path) -> None:
    kept_dir, _ = _run(store, src, lambda w: (w / stash.MANIFEST).mkdir())
    assert not kept_dir.exists()
    _, kept = _run(store, src)
    assert kept == set()


def test_two_runs_never_share_a_kept_dir(store: Store, src: Path) -> None:
    _run(store, src)
    inputs = _inputs(src)
    first, kept = stash.claim(store, SLOT, "app", inputs)
    second, none = stash.claim(store, SLOT, "app", inputs)
    assert kept and none == set() and first != second
    assert list(second.iterdir()) == []


def test_gc_keeps_kept_dirs_within_the_size_and_of_recipes_still_there(
    store: Store, src: Path, tmp_path: Path,
) -> None:
    """gc counts kept dirs in the size: within it they stay (the next run still reuses
    them); past it the least recently kept go first; a dir whose recipe file is gone, or
    with no manifest, goes whatever the size."""
    recipe = tmp_path / "p" / "plan.toml"
    recipe.parent.mkdir()
    recipe.write_text("")
    kept_dir, _ = _run(store, src)
    manifest = json.loads((kept_dir / stash.MANIFEST).read_text())
    assert manifest["project"] == ""
    report = store.collect(1 << 40)
    assert report.stashed == 0 and kept_dir.is_dir()
    assert report.stash_left == 1 and report.stash_bytes == sum(
        p.stat().st_size for p in kept_dir.rglob("*") if p.is_file() and not p.is_symlink())
    _, kept = _run(store, src)
    assert kept  # reused after the gc

    # two slots, kept one after the other: a budget for one keeps the later
    inputs = _inputs(src)
    other = stash.slot(str(recipe), "app@linux/arm64")
    for name in (SLOT, other):
        workdir, got = stash.claim(store, name, "app", inputs)
        populate(workdir, inputs, {}, store, kept=got)
        staged = stash.record(workdir, inputs)
        stash.keep(store, name, workdir, staged, stash.started(), project=str(recipe))
        time.sleep(0.02)  # another mtime for the second manifest
    first = store.root / STASH / SLOT
    os.utime(first / stash.MANIFEST, (time.time() - 60, time.time() - 60))
    report = store.collect(_du(store.root / STASH / other))  # room for one of the two
    assert report.stashed == 1 and not first.exists() and (store.root / STASH / other).is_dir()

    recipe.unlink()  # its recipe is gone: its dir goes, however much room there is
    report = store.collect(1 << 40)
    assert report.stashed == 1 and report.stash_left == 0
    assert list((store.root / STASH).iterdir()) == []
    # a dir with no manifest (not kept whole) goes too
    (store.root / STASH / "junk").mkdir()
    assert store.collect(1 << 40).stashed == 1


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def test_reuse_can_be_turned_off() -> None:
    assert stash.enabled({}) and not stash.enabled({stash.ENV: "0"})


def test_gc_drops_registry_documents_kept_a_month_ago(store: Store) -> None:
    old, new = store.root / "docs" / "aa" / ("a" * 64), store.root / "docs" / "bb" / ("b" * 64)
    for doc in (old, new):
        doc.parent.mkdir(parents=True)
        doc.write_bytes(b"{}")
    month = time.time() - 31 * 86400
    os.utime(old, (month, month))
    store.collect(1 << 40)
    assert not old.exists() and new.exists()
