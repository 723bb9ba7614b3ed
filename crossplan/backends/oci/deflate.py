"""Layer compression: gzip streams built from fixed blocks of the tar, deflated in parallel
by zlib (the default) or by ISA-L's igzip (opt-in), and the encoding string keys name."""

from __future__ import annotations

import functools
import os
import struct
import threading
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["BLOCK", "DEFLATE_ENV", "GZIP_LEVEL", "Deflater", "layer_encoding", "new_deflater"]

# Layers are deflated by zlib at GZIP_LEVEL, pigz-style: the tar stream is cut into BLOCK
# bytes, each block deflated on its own (primed with the 32 KiB before it, as a preset
# dictionary) in a pool of threads (zlib releases the GIL), each but the last ended by a
# sync flush, and the pieces joined into one gzip member. The bytes are a function of the
# tar, the block size and zlib's version alone (not of the number of threads or CPUs).
# ``CROSSPLAN_LAYER_DEFLATE=igzip`` (python-isal) is ~7x faster per core but its bytes
# depend on the CPU's SIMD tier: for dev loops, not releases. Which one, and what its bytes
# depend on, is part of every oci image's key (``layer_encoding()``, in images/oci.py).
GZIP_LEVEL = 1
ISAL_LEVEL = 1
DEFLATE_ENV = "CROSSPLAN_LAYER_DEFLATE"  # zlib (default) | igzip
BLOCK = 1 << 20
_WINDOW = 32 << 10  # deflate's window: the dictionary each block is primed with
# gzip header: no name, mtime 0, XFL 4 (fastest), OS 255 (unknown), as gzip.GzipFile writes
# it at level 1.
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"


@functools.cache
def layer_encoding() -> str:
    """What a layer blob's bytes depend on besides its tar: the deflate implementation, its
    level and version (zlib's output has changed between versions, and zlib-ng builds of
    libz, as some distributions ship, write other bytes), the block size, and for igzip the
    CPU class whose code path it dispatches to. igzip only when
    ``CROSSPLAN_LAYER_DEFLATE=igzip`` and isal imports."""
    zlib_encoding = f"gzip-{GZIP_LEVEL}-zlib{zlib.ZLIB_RUNTIME_VERSION}-b{BLOCK >> 10}k"
    if os.environ.get(DEFLATE_ENV, "zlib").lower() != "igzip":
        return zlib_encoding
    try:
        import isal
    except ImportError:
        return zlib_encoding
    return f"igzip-{ISAL_LEVEL}-isal{isal.ISAL_VERSION}-{_cpu_class()}"


def _cpu_class() -> str:
    """The machine, and on x86-64 the highest SIMD tier ISA-L's dispatchers choose from."""
    machine = os.uname().machine
    if machine not in ("x86_64", "amd64"):
        return machine
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.partition(":")[2].split())
                    break
    except OSError:
        return f"{machine}-unknown"
    tiers = (("avx512", {"avx512f", "avx512bw", "avx512vl", "avx512dq"}), ("avx2", {"avx2"}),
             ("avx", {"avx"}), ("sse42", {"sse4_2"}))
    tier = next((name for name, need in tiers if need <= flags), "base")
    return f"{machine}-{tier}"


class Deflater:
    """A gzip stream fed whole ``BLOCK``-byte blocks (``write``) and one last, shorter or
    empty block (``finish``, which returns the blob)."""

    def __init__(self, write: Callable[[memoryview], None],
                 finish: Callable[[memoryview], bytes]) -> None:
        self.write = write
        self.finish = finish


def new_deflater() -> Deflater:
    """A deflater of the encoding ``layer_encoding()`` names."""
    if layer_encoding().startswith("gzip-"):
        return _ZlibBlocks().deflater()
    return _igzip()


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _threads() -> ThreadPoolExecutor:
    """One pool for every layer of the process: as many threads as CPUs."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="deflate")
        return _pool


def _deflate_block(block: bytes, primer: bytes, last: bool) -> bytes:
    if primer:
        comp = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, zdict=primer)
    else:
        comp = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return comp.compress(block) + comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class _ZlibBlocks:
    """pigz's scheme with zlib: blocks deflated in parallel, joined in order."""

    def __init__(self) -> None:
        self.crc = 0
        self.size = 0
        self.primer = b""
        self.parts: list[bytes] = [_HEADER]
        self.pending: deque[Future[bytes]] = deque()
        self.limit = 2 * (os.cpu_count() or 1)  # blocks in flight: memory stays bounded

    def deflater(self) -> Deflater:
        return Deflater(self.write, self.finish)

    def _submit(self, data: memoryview, last: bool) -> None:
        block = bytes(data)
        self.crc = zlib.crc32(block, self.crc)
        self.size += len(block)
        self.pending.append(_threads().submit(_deflate_block, block, self.primer, last))
        self.primer = block[-_WINDOW:]
        while len(self.pending) > self.limit:
            self.parts.append(self.pending.popleft().result())

    def write(self, data: memoryview) -> None:
        self._submit(data, last=False)

    def finish(self, data: memoryview) -> bytes:
        self._submit(data, last=True)
        self.parts.extend(f.result() for f in self.pending)
        self.pending.clear()
        self.parts.append(struct.pack("<II", self.crc, self.size & 0xFFFFFFFF))
        return b"".join(self.parts)


def _igzip() -> Deflater:
    from isal import isal_zlib

    comp = isal_zlib.compressobj(ISAL_LEVEL, isal_zlib.DEFLATED, 16 + isal_zlib.MAX_WBITS)
    parts: list[bytes] = []

    def write(data: memoryview) -> None:
        parts.append(comp.compress(data))

    def finish(data: memoryview) -> bytes:
        parts.append(comp.compress(data))
        parts.append(comp.flush())
        return b"".join(parts)

    return Deflater(write, finish)
