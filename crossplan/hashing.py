"""blake3 content digests of bytes and files (the store's and the keys' hash)."""

from __future__ import annotations

import os

import blake3

__all__ = ["copy_hashing", "file_digest", "hash_bytes"]

_CHUNK = 1 << 20


def hash_bytes(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def file_digest(path: str | os.PathLike[str], size: int | None = None) -> str:
    """blake3 of a file's bytes (read a MiB at a time)."""
    if size is None:
        size = os.stat(path).st_size
    h = blake3.blake3()
    with open(path, "rb") as f:
        if size < _CHUNK:
            h.update(f.read())
        else:  # in chunks: memory (and RSS, unlike mmap) independent of the file's size
            buf = bytearray(_CHUNK)
            view = memoryview(buf)
            while n := f.readinto(buf):
                h.update(view[:n])
    return h.hexdigest()


def copy_hashing(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> str:
    """Copy ``src`` to ``dest`` and return the blake3 of the bytes written: the digest of
    what was staged, not of what was there earlier (hash-while-copying)."""
    h = blake3.blake3()
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        while chunk := fin.read(1 << 20):
            h.update(chunk)
            fout.write(chunk)
    return h.hexdigest()
