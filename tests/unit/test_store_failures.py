"""The store's failure modes: errors of the place it lives become EnvironmentProblems (exit 3)
naming it; leases keep gc off what an open store uses; dead owners' tmp entries are swept."""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache
import pytest

from crossplan.cache.failures import translate
from crossplan.cache.leases import live_leases, owner_of, tmp_prefix
from crossplan.cache.store import Entry, OutputFile, Store
from crossplan.errors import EXIT_ENVIRONMENT, EnvironmentProblem


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store")
    yield s
    s.close()


ROOT = Path("/somewhere/store")


@pytest.mark.parametrize(("exc", "words"), [
    (OSError(errno.EROFS, "Read-only file system", "/somewhere/store/tmp/x"), "read-only"),
    (OSError(errno.ENOSPC, "No space left on device"), "out of space"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "quota"),
    (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
    (OSError(errno.EPERM, "Operation not permitted"), "not permitted"),
    (OSError(errno.ENOLCK, "No locks available"), "locking"),
    (OSError(errno.EOPNOTSUPP, "Operation not supported"), "locking"),
    (sqlite3.OperationalError("attempt to write a readonly database"), "read-only"),
    (sqlite3.OperationalError("database or disk is full"), "out of space"),
    (sqlite3.OperationalError("database is locked"), "SQLite index"),
    (sqlite3.OperationalError("disk I/O error"), "I/O error"),
    (diskcache.Timeout(), "SQLite index lock"),
])
def test_translate_names_the_store_and_what_to_do(exc: BaseException, words: str) -> None:
    problem = translate(exc, ROOT, "publishing an entry")
    assert isinstance(problem, EnvironmentProblem)
    assert problem.exit_code == EXIT_ENVIRONMENT
    assert str(ROOT) in problem.render()
    assert words in problem.render()
    assert "publishing an entry" in problem.render()
    assert "--cache-dir" in (problem.hint or "")


@pytest.mark.parametrize("exc", [
    FileNotFoundError(errno.ENOENT, "No such file"),
    sqlite3.OperationalError("no such table: Cache"),
    ValueError("a bug"),
])
def test_translate_leaves_other_errors_alone(exc: BaseException) -> None:
    assert translate(exc, ROOT, "x") is None


def _fail_with(code: int) -> Any:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError(code, os.strerror(code))

    return boom


def test_a_full_disk_while_adding_a_blob_is_exit_3_and_leaves_no_temp_file(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "fsync", _fail_with(errno.ENOSPC))
    with pytest.raises(EnvironmentProblem, match="out of space") as info:
        store.put_bytes(b"never stored")
    assert str(store.root) in info.value.render()
    monkeypatch.undo()
    assert list((store.root / "tmp").iterdir()) == []
    assert list((store.root / "blobs").glob("*/*")) == []


def test_flock_unsupported_on_open_is_exit_3_naming_a_local_filesystem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fcntl, "flock", _fail_with(errno.ENOLCK))
    with pytest.raises(EnvironmentProblem, match="local filesystem") as info:
        Store(tmp_path / "nfs-store")
    assert str(tmp_path / "nfs-store") in info.value.render()


def test_a_read_only_index_on_publish_is_exit_3(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = store.put_bytes(b"x")
    entry = Entry("k", "n", (OutputFile("x", digest, 0o644, 1),), None, 0.0, time.time(), {})

    def readonly(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(store.index, "set", readonly)
    with pytest.raises(EnvironmentProblem, match="read-only"):
        store.publish(entry)


def test_put_bytes_of_a_known_blob_leaves_no_temp_file(store: Store) -> None:
    store.put_bytes(b"twice")
    store.put_bytes(b"twice")
    src = store.root / "elsewhere"
    src.write_bytes(b"twice")
    store.put_file(src, move=True)
    assert not src.exists()
    assert list((store.root / "tmp").iterdir()) == []


def _published(store: Store, key: str, data: bytes, created: float = 1.0) -> Entry:
    d = store.put_bytes(data)
    e = Entry(key, f"node-{key}", (OutputFile("f", d, 0o644, len(data)),), None, 0.0, created,
              {})
    store.publish(e)
    return e


def test_gc_keeps_what_another_open_store_leased_and_reports_it(tmp_path: Path) -> None:
    builder = Store(tmp_path / "store")
    old = _published(builder, "old", b"o" * 10)
    builder.close()
    reader = Store(tmp_path / "store")  # a run that read "old" ...
    gc = Store(tmp_path / "store")  # ... while `plan cache gc` runs
    try:
        assert reader.get("old") == old
        report = gc.collect(0)
        assert report.leased_entries == ["old"]
        assert report.removed == 0
        assert reader.has_blob(old.files[0].digest)
        reader.close()
        report = gc.collect(0)  # the lease is gone: now it goes
        assert report.removed == 1
        assert not gc.has_blob(old.files[0].digest)
    finally:
        reader.close()
        gc.close()


def test_gc_keeps_unpublished_blobs_younger_than_a_live_lease(tmp_path: Path) -> None:
    gc = Store(tmp_path / "store")
    build = Store(tmp_path / "store")
    try:
        digest = build.put_bytes(b"made by a build, not published yet")
        report = gc.collect(0, grace=0.0)
        assert report.leased_blobs == 1
        assert gc.has_blob(digest)
    finally:
        build.close()
        gc.close()


def test_dead_leases_and_their_tmp_entries_are_swept_on_open(tmp_path: Path) -> None:
    first = Store(tmp_path / "store")
    work = first.root / "tmp" / (first.tmp_prefix("work-step") + "abc")
    (work / "sub").mkdir(parents=True)
    (work / "sub" / "big").write_bytes(b"x" * 1000)
    os.chmod(work / "sub", 0o555)  # read-only dirs (Go's module cache) are swept too
    dead_id = first.lease.id if first.lease else ""
    assert owner_of(work.name) == dead_id
    # What a SIGKILL leaves: the lease file and tmp entries, without the lock.
    lease_file = first.root / "leases" / dead_id
    saved = lease_file.read_bytes()
    first.close()
    lease_file.write_bytes(saved)
    assert work.exists()
    again = Store(tmp_path / "store")
    try:
        assert not work.exists()
        assert not lease_file.exists()
        assert list(live_leases(again.root)) == [again.lease.id if again.lease else ""]
    finally:
        again.close()


def test_a_live_owners_tmp_entries_survive_another_open(store: Store, tmp_path: Path) -> None:
    work = store.root / "tmp" / (store.tmp_prefix("work-x") + "abc")
    work.mkdir()
    other = Store(store.root)
    other.close()
    assert work.exists()


def test_pid_reuse_does_not_keep_a_dead_lease(tmp_path: Path) -> None:
    """A lease named with this (live) pid but another token and no lock is dead."""
    root = tmp_path / "store"
    s = Store(root)
    try:
        fake = f"{os.getpid()}-deadbeef"
        (root / "leases" / fake).write_text("started 0\nk old\n")
        stale = root / "tmp" / (tmp_prefix("work-y", fake) + "zzz")
        stale.mkdir()
        assert fake not in live_leases(root)
        Store(root).close()
        assert not stale.exists()
    finally:
        s.close()
