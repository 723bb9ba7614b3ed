"""Layer compression: one gzip member per layer, by libdeflate (the default), by zlib in
parallel blocks (past a size, or asked for) or by ISA-L's igzip (opt-in), and the encoding
string image keys name."""

from __future__ import annotations

import functools
import hashlib
import os
import struct
import threading
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

__all__ = ["BLOCK", "DEFLATE_ENV", "GZIP_LEVEL", "Deflater", "layer_encoding",
           "libdeflate_identity", "new_deflater"]

# Every encoding writes one gzip member (what every runtime and registry tool reads), its
# bytes a function of the tar and of what ``layer_encoding()`` names, never of the CPU or of
# the number of threads:
# - libdeflate (the default; the `deflate` binding): the whole tar at level 1, ~2.7x faster
#   than zlib on a 15 MB Go binary and ~1.5% smaller. Its maintainer: output "deterministic
#   for a particular version", no CPU-dependent code path in its compressor. The version is
#   named twice: the binding's, and a fingerprint of the output on a fixed probe (a binding
#   built against another libdeflate shows). Tars over WHOLE_LIMIT are not held in memory:
# - zlib blocks (past WHOLE_LIMIT, or ``CROSSPLAN_LAYER_DEFLATE=zlib``): pigz's scheme, the
#   tar cut into BLOCK bytes each deflated on its own (primed with the 32 KiB before it) in
#   a pool of threads, each but the last ended by a sync flush, joined into one member.
# - igzip (``CROSSPLAN_LAYER_DEFLATE=igzip``, python-isal): its bytes depend on the CPU's
#   SIMD tier, which its encoding names: for dev loops, not releases.
GZIP_LEVEL = 1
ISAL_LEVEL = 1
DEFLATE_ENV = "CROSSPLAN_LAYER_DEFLATE"  # libdeflate (default) | zlib | igzip
BLOCK = 1 << 20
WHOLE_LIMIT = 64 << 20  # tars up to this size are compressed whole by libdeflate
_WINDOW = 32 << 10  # deflate's window: the dictionary each zlib block is primed with
# gzip header: no name, mtime 0, XFL 4 (fastest), OS 255 (unknown), as gzip.GzipFile writes
# it at level 1.
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"


@functools.cache
def layer_encoding() -> str:
    """What a layer blob's bytes depend on besides its tar: the deflate implementation, its
    level and version (compressors change their output between versions, and zlib-ng builds
    of libz write other bytes than zlib), the size rule and block size, and for igzip the
    CPU class whose code path it dispatches to."""
    zlib_blocks = f"zlib{zlib.ZLIB_RUNTIME_VERSION}.b{BLOCK >> 10}k"
    choice = os.environ.get(DEFLATE_ENV, "libdeflate").lower()
    if choice == "igzip":
        try:
            import isal
        except ImportError:
            pass
        else:
            return f"igzip-{ISAL_LEVEL}-isal{isal.ISAL_VERSION}-{_cpu_class()}"
    if choice != "zlib":
        whole = libdeflate_identity()
        if whole is not None:
            return f"gzip-{GZIP_LEVEL}-{whole}.upto{WHOLE_LIMIT >> 20}m+{zlib_blocks}"
    return f"gzip-{GZIP_LEVEL}-{zlib_blocks}"


@functools.cache
def libdeflate_identity() -> str | None:
    """libdeflate's identity: the binding's version and a fingerprint of its output on a
    fixed probe; None without the binding. (Computed once per process: a daemon computes
    it before forking its commands.)"""
    try:
        import deflate
    except ImportError:
        return None
    words = b"crossplan layer probe 0123456789 abcdefghijklmnopqrstuvwxyz "
    probe = bytearray()
    x = 1
    while len(probe) < 1 << 16:  # text and noise, so matches and literals both show
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        probe += words[: (x >> 58) + 1] if x & 1 else (x >> 8).to_bytes(7, "little")
    out = deflate.gzip_compress(bytes(probe), GZIP_LEVEL)
    return f"libdeflate{deflate.__version__}.fp{hashlib.sha256(out).hexdigest()[:12]}"


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


class Deflater(Protocol):
    """A gzip stream of a tar: ``write`` takes the tar in pieces of any size, ``finish``
    returns the blob and the tar's sha256 (hex). Made with ``out``, the blob is handed to
    it piece by piece as it is compressed instead (``finish`` returns ``b""``)."""

    def write(self, data: bytes | memoryview) -> None: ...

    def finish(self) -> tuple[bytes, str]: ...


Out = Callable[[bytes], None]


def new_deflater(out: Out | None = None) -> Deflater:
    """A deflater of the encoding ``layer_encoding()`` names."""
    encoding = layer_encoding()
    if encoding.startswith("igzip-"):
        return _Igzip(out)
    if "libdeflate" in encoding:
        return _Whole(out)
    return _ZlibBlocks(out)


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


class _Aligned:
    """Hashes the tar as it comes and hands it on in whole ``BLOCK``-byte blocks and one
    last, shorter or empty block, whatever the sizes written: the blob must be a function
    of the tar's bytes alone (zlib blocks are deflated each on its own, and igzip's output
    depends on how its input is split)."""

    def __init__(self, out: Out | None) -> None:
        self._tar_hash = hashlib.sha256()
        self._pending = bytearray()
        self._out = out
        self._parts: list[bytes] = []  # the blob so far, without ``out``

    def _emit(self, part: bytes) -> None:
        if self._out is not None:
            self._out(part)
        else:
            self._parts.append(part)

    def write(self, data: bytes | memoryview) -> None:
        self._tar_hash.update(data)
        self._pending += data
        if len(self._pending) >= BLOCK:
            view = memoryview(self._pending)
            whole = len(self._pending) - len(self._pending) % BLOCK
            for start in range(0, whole, BLOCK):
                self._block(view[start:start + BLOCK], last=False)
            view.release()
            del self._pending[:whole]

    def finish(self) -> tuple[bytes, str]:
        self._block(memoryview(bytes(self._pending)), last=True)
        self._pending = bytearray()
        return self._blob(), self._tar_hash.hexdigest()

    def _block(self, data: memoryview, last: bool) -> None:
        raise NotImplementedError

    def _blob(self) -> bytes:
        raise NotImplementedError


class _ZlibBlocks(_Aligned):
    """pigz's scheme with zlib: blocks deflated in parallel, joined in order."""

    def __init__(self, out: Out | None = None) -> None:
        super().__init__(out)
        self.crc = 0
        self.size = 0
        self.primer = b""
        self._emit(_HEADER)
        self.pending: deque[Future[bytes]] = deque()
        self.limit = 2 * (os.cpu_count() or 1)  # blocks in flight: memory stays bounded

    def _block(self, data: memoryview, last: bool) -> None:
        block = bytes(data)
        self.crc = zlib.crc32(block, self.crc)
        self.size += len(block)
        self.pending.append(_threads().submit(_deflate_block, block, self.primer, last))
        self.primer = block[-_WINDOW:]
        while len(self.pending) > self.limit:
            self._emit(self.pending.popleft().result())

    def _blob(self) -> bytes:
        for f in self.pending:
            self._emit(f.result())
        self.pending.clear()
        self._emit(struct.pack("<II", self.crc, self.size & 0xFFFFFFFF))
        return b"".join(self._parts)


class _Whole:
    """The tar held (up to WHOLE_LIMIT) and compressed at once by libdeflate while another
    thread hashes it (both release the GIL: the layer takes the time of the compression
    alone, and two platforms' layers compress on two cores); past the limit, what was held
    goes to zlib blocks and the rest streams there."""

    def __init__(self, out: Out | None = None) -> None:
        self.tar = bytearray()
        self.blocks: _ZlibBlocks | None = None
        self.out = out

    def write(self, data: bytes | memoryview) -> None:
        if self.blocks is not None:
            self.blocks.write(data)
            return
        self.tar += data
        if len(self.tar) > WHOLE_LIMIT:
            self.blocks = _ZlibBlocks(self.out)
            held = memoryview(self.tar)
            for start in range(0, len(held), BLOCK):
                self.blocks.write(held[start:start + BLOCK])
            held.release()
            self.tar = bytearray()

    def finish(self) -> tuple[bytes, str]:
        if self.blocks is not None:
            return self.blocks.finish()
        import deflate

        tar_hash = _threads().submit(_sha256, self.tar)
        blob = bytes(deflate.gzip_compress(self.tar, GZIP_LEVEL))
        if self.out is not None:
            self.out(blob)
            blob = b""
        return blob, tar_hash.result()


def _sha256(data: bytearray) -> str:
    return hashlib.sha256(data).hexdigest()


class _Igzip(_Aligned):
    def __init__(self, out: Out | None = None) -> None:
        super().__init__(out)
        from isal import isal_zlib

        self._comp = isal_zlib.compressobj(ISAL_LEVEL, isal_zlib.DEFLATED,
                                           16 + isal_zlib.MAX_WBITS)

    def _block(self, data: memoryview, last: bool) -> None:
        self._emit(self._comp.compress(data))
        if last:
            self._emit(self._comp.flush())

    def _blob(self) -> bytes:
        return b"".join(self._parts)
