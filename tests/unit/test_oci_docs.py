"""backends/oci/docs.py: registry documents kept by digest, checked on every read."""

from __future__ import annotations

import hashlib
from pathlib import Path

from crossplan.backends.oci.docs import DOCS_LIMIT, CachedDocs


class _Registry:
    """Documents by digest, counting what is asked (a fake: unit tests only)."""

    def __init__(self, *docs: bytes) -> None:
        self.docs = {"sha256:" + hashlib.sha256(d).hexdigest(): d for d in docs}
        self.asked: list[str] = []

    def read_manifest(self, digest: str) -> bytes:
        self.asked.append(digest)
        return self.docs.get(digest, b"not it")

    def read_blob(self, digest: str) -> bytes:
        return self.read_manifest(digest)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_document_is_fetched_once_and_read_from_disk_after(tmp_path: Path) -> None:
    doc, config = b'{"layers": []}', b'{"os": "linux"}'
    registry = _Registry(doc, config)
    docs = CachedDocs(registry, tmp_path / "docs")
    assert docs.read_manifest(_digest(doc)) == doc and docs.read_blob(_digest(config)) == config
    again = CachedDocs(registry, tmp_path / "docs")  # another run, the same store
    assert again.read_manifest(_digest(doc)) == doc and again.read_blob(_digest(config)) == config
    assert registry.asked == [_digest(doc), _digest(config)] and again.fetched == 0


def test_a_kept_file_that_does_not_hash_to_its_name_is_fetched_again(tmp_path: Path) -> None:
    doc = b'{"layers": [1]}'
    registry = _Registry(doc)
    docs = CachedDocs(registry, tmp_path)
    docs.read_manifest(_digest(doc))
    kept = tmp_path / _digest(doc)[7:9] / _digest(doc)[7:]
    kept.write_bytes(b"tampered")
    assert docs.read_manifest(_digest(doc)) == doc and len(registry.asked) == 2
    assert kept.read_bytes() == doc  # kept anew


def test_what_does_not_match_its_digest_or_is_large_is_never_kept(tmp_path: Path) -> None:
    big = b"x" * (DOCS_LIMIT + 1)
    registry = _Registry(big)
    docs = CachedDocs(registry, tmp_path)
    wrong = "sha256:" + "0" * 64
    assert docs.read_manifest(wrong) == b"not it"  # the caller's digest check reports it
    assert docs.read_blob(_digest(big)) == big
    assert docs.read_manifest("md5:abc") == b"not it"  # not a sha256 digest: passed through
    assert list(tmp_path.rglob("*")) == [] or all(p.is_dir() for p in tmp_path.rglob("*"))
    assert docs.fetched == 3


def test_a_store_that_cannot_be_written_still_answers(tmp_path: Path) -> None:
    doc = b'{"layers": [2]}'
    blocked = tmp_path / "file"
    blocked.write_text("a file where the directory would go")
    registry = _Registry(doc)
    docs = CachedDocs(registry, blocked)
    assert docs.read_manifest(_digest(doc)) == doc and docs.read_manifest(_digest(doc)) == doc
    assert len(registry.asked) == 2
