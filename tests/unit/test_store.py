"""The local store: read-only blobs, publish-after-blobs, verification, gc, locks."""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossplan.cache.store import CorruptEntry, Entry, OutputFile, Store, default_store_dir
from crossplan.hashing import hash_bytes


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store")
    yield s
    s.close()


def _entry(store: Store, key: str, contents: dict[str, bytes], created: float = 0.0) -> Entry:
    files = tuple(
        OutputFile(path, store.put_bytes(data), 0o644, len(data))
        for path, data in sorted(contents.items())
    )
    return Entry(key, f"node-{key}", files, None, 0.5, created or time.time(), {})


def test_put_bytes_writes_a_read_only_blob_named_by_digest(store: Store) -> None:
    digest = store.put_bytes(b"hello")
    assert digest == hash_bytes(b"hello")
    path = store.blob_path(digest)
    assert path == store.root / "blobs" / digest[:2] / digest
    assert path.read_bytes() == b"hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert list((store.root / "tmp").iterdir()) == []


def test_put_file_move_consumes_the_source_and_copy_keeps_it(store: Store, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"moved")
    b.write_bytes(b"copied")
    assert store.put_file(a, move=True) == (hash_bytes(b"moved"), 5)
    assert store.put_file(b) == (hash_bytes(b"copied"), 6)
    assert not a.exists()
    assert b.read_bytes() == b"copied"


def test_publish_then_get_round_trips(store: Store) -> None:
    e = _entry(store, "k1", {"out/a.txt": b"A", "b.bin": b"BB"})
    assert store.get("k1") is None
    store.publish(e)
    got = store.get("k1")
    assert got == e
    assert got.digests() == {"b.bin": hash_bytes(b"BB"), "out/a.txt": hash_bytes(b"A")}
    assert store.keys() == ["k1"]


def test_publish_refuses_an_entry_whose_blobs_are_missing(store: Store) -> None:
    e = Entry("k", "n", (OutputFile("x", "ab" * 32, 0o644, 1),), None, 0.0, 0.0, {})
    with pytest.raises(RuntimeError, match="missing blobs"):
        store.publish(e)
    assert store.keys() == []


def test_blobs_without_a_published_entry_are_invisible_and_collected(store: Store) -> None:
    """What a crash between writing blobs and publishing leaves: no entry, only garbage."""
    digest = store.put_bytes(b"orphan")
    assert store.keys() == []
    assert store.gc(max_size=1 << 30) == (0, 6)
    assert not store.has_blob(digest)


def test_a_corrupt_blob_evicts_the_entry_and_the_blob(store: Store) -> None:
    e = _entry(store, "k", {"a": b"good bytes"})
    store.publish(e)
    blob = store.blob_path(e.files[0].digest)
    os.chmod(blob, 0o644)
    blob.write_bytes(b"evil bytes")
    with pytest.raises(CorruptEntry, match="1 blob"):
        store.get("k")
    assert store.get("k") is None
    assert not blob.exists()


def test_a_missing_blob_evicts_the_entry(store: Store) -> None:
    e = _entry(store, "k", {"a": b"x"})
    store.publish(e)
    store.evict_blob(e.files[0].digest)
    with pytest.raises(CorruptEntry):
        store.get("k")
    assert store.keys() == []


def test_get_without_verify_does_not_hash(store: Store) -> None:
    e = _entry(store, "k", {"a": b"x"})
    store.publish(e)
    blob = store.blob_path(e.files[0].digest)
    os.chmod(blob, 0o644)
    blob.write_bytes(b"y")
    assert store.get("k", verify=False) == e


def test_verify_evicts_only_corrupt_entries(store: Store) -> None:
    good, bad = _entry(store, "good", {"a": b"1"}), _entry(store, "bad", {"a": b"2"})
    store.publish(good)
    store.publish(bad)
    blob = store.blob_path(bad.files[0].digest)
    os.chmod(blob, 0o644)
    blob.write_bytes(b"3")
    assert store.verify() == ["bad"]
    assert store.keys() == ["good"]


def test_remove(store: Store) -> None:
    store.publish(_entry(store, "k", {"a": b"1"}))
    assert store.remove("k") is True
    assert store.remove("k") is False
    assert store.keys() == []


def test_gc_drops_oldest_entries_first_and_keeps_shared_blobs(store: Store) -> None:
    old = _entry(store, "old", {"a": b"x" * 100, "shared": b"s" * 10}, created=1.0)
    mid = _entry(store, "mid", {"a": b"y" * 100, "shared": b"s" * 10}, created=2.0)
    new = _entry(store, "new", {"a": b"z" * 100}, created=3.0)
    for e in (old, mid, new):
        store.publish(e)
    removed, freed = store.gc(max_size=250)
    assert removed == 1
    assert freed == 100
    assert store.keys() == ["mid", "new"]
    assert store.get("mid") == mid  # the blob shared with the evicted entry survived
    assert store.gc(max_size=0) == (2, 210)
    assert store.keys() == []
    assert list((store.root / "blobs").glob("*/*")) == []


def test_gc_cleans_old_tmp_files(store: Store) -> None:
    stale, fresh = store.root / "tmp" / "work-stale", store.root / "tmp" / "blob-fresh"
    stale.mkdir()
    (stale / "big").write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    store.gc(max_size=1 << 30)
    assert not stale.exists()
    assert fresh.exists()


def test_materialize_restores_modes_and_symlinks(store: Store, tmp_path: Path) -> None:
    exe = store.put_bytes(b"#!/bin/sh\n")
    link = store.put_bytes(b"tool")
    e = Entry(
        "k", "n",
        (OutputFile("bin/tool", exe, 0o755, 10), OutputFile("bin/alias", link, 0o777, 0, "tool")),
        None, 0.0, 0.0, {},
    )
    dest = tmp_path / "dest"
    store.materialize(e, dest)
    store.materialize(e, dest)  # overwriting read-only copies and links works
    assert (dest / "bin/tool").read_bytes() == b"#!/bin/sh\n"
    assert stat.S_IMODE((dest / "bin/tool").stat().st_mode) == 0o755
    assert os.readlink(dest / "bin/alias") == "tool"


def test_materialize_read_only_links_and_a_step_gets_copies(store: Store, tmp_path: Path) -> None:
    """A reader's view shares the blob's inode (nothing copied); a work dir never does (a
    step writing to its input would change the store's blob)."""
    blob = store.put_bytes(b"layer bytes")
    e = Entry("k", "n", (OutputFile("oci/blob", blob, 0o644, 11),), None, 0.0, 0.0, {})
    view, work = tmp_path / "view", tmp_path / "work"
    store.materialize(e, view, read_only=True)
    store.materialize(e, work)
    stored = store.blob_path(blob).stat()
    assert (view / "oci/blob").stat().st_ino == stored.st_ino
    assert (work / "oci/blob").stat().st_ino != stored.st_ino
    shutil.rmtree(view)
    assert store.blob_path(blob).read_bytes() == b"layer bytes"


def test_entries_survive_reopening(store: Store, tmp_path: Path) -> None:
    e = _entry(store, "k", {"a": b"1"})
    store.publish(e)
    store.record("node@x", {"key": "k"})
    store.close()
    again = Store(tmp_path / "store")
    try:
        assert again.get("k") == e
        assert again.last_record("node@x") == {"key": "k"}
        assert again.entries() == [e]
    finally:
        again.close()


def test_lock_is_exclusive_per_key(store: Store) -> None:
    events: list[str] = []
    inside = threading.Event()

    def hold() -> None:
        with store.lock("key-a"):
            events.append("a-in")
            inside.set()
            time.sleep(0.3)
            events.append("a-out")

    t = threading.Thread(target=hold)
    t.start()
    assert inside.wait(5)
    with store.lock("key-b"):  # another key is not blocked
        events.append("b")
    with store.lock("key-a"):
        events.append("a-again")
    t.join()
    assert events == ["a-in", "b", "a-out", "a-again"]


def test_default_store_dir(tmp_path: Path) -> None:
    assert default_store_dir({"CROSSPLAN_CACHE_DIR": "/x/y"}) == Path("/x/y")
    assert default_store_dir({"XDG_CACHE_HOME": "/xdg"}) == Path("/xdg/crossplan")
    assert default_store_dir({"CROSSPLAN_CACHE_DIR": "/c", "XDG_CACHE_HOME": "/xdg"}) == Path("/c")
    assert default_store_dir({}) == Path.home() / ".cache" / "crossplan"
