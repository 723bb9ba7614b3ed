"""Base layers kept by digest (backends/oci/kept.py) and their gc (cache/gc.py): fetched
once and streamed, kept only when the bytes hash to the digest, fetched again when a kept
file no longer does, the source used directly where nothing can be kept; gc drops layers
unused for 30 days, cut-off fetches, and the least recently used beyond the size."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from crossplan.backends.oci._fsutil import link_or_copy
from crossplan.backends.oci.kept import KeptLayers
from crossplan.backends.oci.registry import DigestMismatch
from crossplan.cache.store import Store

LAYER = b"layer bytes " * 1000
DIGEST = "sha256:" + hashlib.sha256(LAYER).hexdigest()


class Source:
    """A registry stand-in: counts what it streams; ``wrong`` sends other bytes."""

    def __init__(self, data: bytes = LAYER, *, wrong: bool = False) -> None:
        self.data, self.wrong = data, wrong
        self.streamed = self.spooled = 0

    def read_blob(self, digest: str) -> bytes:
        return self.data

    def iter_blob(self, digest: str) -> Iterator[bytes]:
        self.streamed += 1
        yield self.data[:100]
        yield self.data[100:]
        if self.wrong or "sha256:" + hashlib.sha256(self.data).hexdigest() != digest:
            raise DigestMismatch(f"bytes are not {digest}")

    @contextmanager
    def blob_file(self, digest: str) -> Iterator[Path]:
        self.spooled += 1
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "blob"
            path.write_bytes(self.data)
            yield path


def test_a_layer_is_streamed_once_then_read_from_disk(tmp_path: Path) -> None:
    source = Source()
    kept = KeptLayers(source, tmp_path / "layers")
    with kept.blob_file(DIGEST) as path:
        assert path.read_bytes() == LAYER
        assert path.parent.parent == tmp_path / "layers"
        assert path.stat().st_mode & 0o222 == 0
    assert kept.read_blob(DIGEST) == LAYER
    assert (source.streamed, source.spooled, kept.fetched) == (1, 0, 1)
    assert not [p for p in (tmp_path / "layers").rglob(".tmp-*")]


def test_a_kept_layer_that_does_not_hash_to_its_name_is_fetched_again(tmp_path: Path) -> None:
    source = Source()
    kept = KeptLayers(source, tmp_path / "layers")
    with kept.blob_file(DIGEST) as path:
        pass
    os.chmod(path, 0o644)
    path.write_bytes(b"rot")
    kept = KeptLayers(source, tmp_path / "layers")  # the next build's
    assert kept.read_blob(DIGEST) == LAYER
    assert source.streamed == 2
    assert path.read_bytes() == LAYER


def test_bytes_that_do_not_hash_to_the_digest_are_never_kept(tmp_path: Path) -> None:
    kept = KeptLayers(Source(wrong=True), tmp_path / "layers")
    with pytest.raises(DigestMismatch), kept.blob_file(DIGEST):
        pass
    assert [p for p in (tmp_path / "layers").rglob("*") if p.is_file()] == []


def test_where_nothing_can_be_kept_the_source_is_read_as_before(tmp_path: Path) -> None:
    (tmp_path / "layers").write_text("a file where the directory would be")
    source = Source()
    kept = KeptLayers(source, tmp_path / "layers")
    assert kept.read_blob(DIGEST) == LAYER
    assert kept.read_blob("sha256:not-hex") == LAYER  # no file name to keep it under
    assert (source.streamed, source.spooled, kept.fetched) == (0, 2, 0)


def test_a_layer_is_linked_where_it_can_be_and_copied_where_not(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(LAYER)
    link_or_copy(src, tmp_path / "linked")
    assert (tmp_path / "linked").stat().st_ino == src.stat().st_ino

    def cross_device(a: Path, b: Path) -> None:
        raise OSError(18, "Invalid cross-device link")

    link_or_copy(src, tmp_path / "copied", link=cross_device)
    assert (tmp_path / "copied").read_bytes() == LAYER
    assert (tmp_path / "copied").stat().st_ino != src.stat().st_ino


def _layer(root: Path, data: bytes, *, age: float, name: str | None = None) -> Path:
    hexed = hashlib.sha256(data).hexdigest()
    path = root / "layers" / (name or f"{hexed[:2]}/{hexed}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def test_gc_drops_unused_layers_then_the_least_recently_used_beyond_the_size(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "store")
    try:
        root = store.root
        stale = _layer(root, b"a" * 100, age=31 * 86400)
        cut = _layer(root, b"b" * 100, age=7200, name="ab/.tmp-x")
        older = _layer(root, b"c" * 1000, age=3600)
        newer = _layer(root, b"d" * 1000, age=60)
        shared = _layer(root, b"e" * 5000, age=7200)
        os.link(shared, tmp_path / "entry-blob")  # as hard-linked into an entry: no own bytes
        report = store.collect(1500)
        assert not stale.exists() and not cut.exists() and not older.exists()
        assert newer.exists() and shared.exists()
        assert (report.layers_removed, report.layers_left, report.layer_bytes) == (2, 2, 1000)
        assert report.freed >= 1100
    finally:
        store.close()
