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


def copy_hashing(
    src: str | os.PathLike[str], dest: str | os.PathLike[str], mode: int | None = None
) -> str:
    """Copy ``src`` to ``dest`` and return the blake3 of the bytes written: the digest of
    what was staged, not of what was there earlier (hash-while-copying). With ``mode``,
    ``dest`` gets exactly those permission bits (whatever the umask).

    Plain file descriptors, a MiB at a time: staging copies every input file of a step, so
    the per-file cost (one open of each side, no buffered file objects) is what counts."""
    h = blake3.blake3()
    fin = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fout = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            while data := os.read(fin, _CHUNK):
                h.update(data)
                view = memoryview(data)
                while view:
                    view = view[os.write(fout, view):]
            if mode is not None:
                os.fchmod(fout, mode)
        finally:
            os.close(fout)
    finally:
        os.close(fin)
    return h.hexdigest()
