"""Layer tars are byte-for-byte reproducible and carry normalized headers."""

from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossplan.backends.oci import LayerEntry, build_layer, entries_from_tree
from crossplan.errors import RecipeError, StepFailed

EPOCH = 1_700_000_000


def _entries() -> list[LayerEntry]:
    return [
        LayerEntry("/usr/local/bin/hello", data=b"#!/bin/sh\necho hello\n", mode=0o755),
        LayerEntry("/etc/hello.conf", data=b"greeting=hi\n"),
        LayerEntry("/usr/bin/hi", type="symlink", linkname="/usr/local/bin/hello"),
        LayerEntry("/var/empty", type="dir", mode=0o700),
    ]


def _members(blob: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        return tar.getmembers()


def test_same_input_same_bytes() -> None:
    a = build_layer(_entries(), mtime=EPOCH)
    b = build_layer(list(reversed(_entries())), mtime=EPOCH)
    assert (a.digest, a.diff_id, a.blob) == (b.digest, b.diff_id, b.blob)
    assert a.size == len(a.blob)


@pytest.mark.parametrize(
    "change",
    [
        lambda e: [LayerEntry(e[0].path, data=b"#!/bin/sh\necho hellO\n", mode=0o755), *e[1:]],
        lambda e: [LayerEntry(e[0].path, data=e[0].data, mode=0o750), *e[1:]],
        lambda e: [*e, LayerEntry("/extra", data=b"")],
    ],
    ids=["one byte", "mode", "extra file"],
)
def test_any_change_changes_digests(change: object) -> None:
    base = build_layer(_entries(), mtime=EPOCH)
    changed = build_layer(change(_entries()), mtime=EPOCH)  # type: ignore[operator]
    assert changed.digest != base.digest
    assert changed.diff_id != base.diff_id


def test_mtime_changes_digest() -> None:
    assert build_layer(_entries(), mtime=0).digest != build_layer(_entries(), mtime=1).digest


def test_headers_are_normalized_sorted_with_parents() -> None:
    members = _members(build_layer(_entries(), mtime=EPOCH).blob)
    names = [m.name for m in members]
    assert names == [
        "etc",
        "etc/hello.conf",
        "usr",
        "usr/bin",
        "usr/bin/hi",
        "usr/local",
        "usr/local/bin",
        "usr/local/bin/hello",
        "var",
        "var/empty",
    ]
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", EPOCH)
        assert m.pax_headers == {}
    by_name = {m.name: m for m in members}
    assert by_name["usr/local"].isdir() and by_name["usr/local"].mode == 0o755
    assert by_name["var/empty"].mode == 0o700
    assert by_name["usr/local/bin/hello"].mode == 0o755
    assert by_name["etc/hello.conf"].mode == 0o644
    assert (
        by_name["usr/bin/hi"].issym() and by_name["usr/bin/hi"].linkname == "/usr/local/bin/hello"
    )


def test_tar_is_ustar_without_atime_ctime() -> None:
    raw = gzip.decompress(build_layer(_entries(), mtime=EPOCH).blob)
    assert raw[257:265] == b"ustar\x0000"
    assert raw[345:500].strip(b"\0") == b""  # prefix field only: no GNU atime/ctime
    assert raw.endswith(b"\0" * 1024) and len(raw) % 512 == 0


def test_gzip_header_has_no_mtime_and_no_name() -> None:
    blob = build_layer(_entries(), mtime=EPOCH).blob
    magic, method, flags, mtime = struct.unpack("<HBBI", blob[:8])
    assert (magic, method) == (0x8B1F, 8)
    assert flags == 0  # no FNAME, no FCOMMENT, no FEXTRA
    assert mtime == 0


def test_long_path_falls_back_to_pax() -> None:
    long = "/" + "/".join(["d" * 60] * 4) + "/file"
    layer = build_layer([LayerEntry(long, data=b"x")], mtime=0)
    member = _members(layer.blob)[-1]
    assert member.name == long.lstrip("/")
    assert member.pax_headers.get("path") == long.lstrip("/")


@pytest.mark.parametrize("path", ["relative/file", "/usr/../etc/passwd", "/", "/a/\0b"])
def test_bad_paths_rejected(path: str) -> None:
    with pytest.raises(RecipeError) as err:
        build_layer([LayerEntry(path, data=b"x")], mtime=0)
    assert err.value.exit_code == 2


@pytest.mark.parametrize(
    "entries",
    [
        [LayerEntry("/a", data=b"1"), LayerEntry("/a", data=b"2")],
        [LayerEntry("/a", data=b"1"), LayerEntry("/a/b", data=b"2")],
        [LayerEntry("/a")],
        [LayerEntry("/a", data=b"1", source=Path("/etc/hostname"))],
        [LayerEntry("/a", type="symlink")],
        [LayerEntry("/a", type="dir", data=b"x")],
    ],
    ids=["conflict", "file-as-parent", "no-content", "two-contents", "no-target", "dir-data"],
)
def test_inconsistent_entries_rejected(entries: list[LayerEntry]) -> None:
    with pytest.raises(RecipeError):
        build_layer(entries, mtime=0)


def test_identical_duplicates_are_merged() -> None:
    one = build_layer([LayerEntry("/a", data=b"1")], mtime=0)
    two = build_layer([LayerEntry("/a", data=b"1"), LayerEntry("/a", data=b"1")], mtime=0)
    assert one.digest == two.digest


def test_source_files_stream_and_match_inline_data(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB: more than one read chunk
    (tmp_path / "big").write_bytes(payload)
    from_file = build_layer([LayerEntry("/big", source=tmp_path / "big")], mtime=0)
    inline = build_layer([LayerEntry("/big", data=payload)], mtime=0)
    assert from_file.digest == inline.digest


def test_missing_source_is_a_step_failure(tmp_path: Path) -> None:
    with pytest.raises(StepFailed, match="cannot read source"):
        build_layer([LayerEntry("/x", source=tmp_path / "nope")], mtime=0)


def test_entries_from_tree_normalizes_modes(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "app").write_bytes(b"app")
    (tmp_path / "bin" / "app").chmod(0o700)
    (tmp_path / "README").write_text("hi")
    (tmp_path / "README").chmod(0o600)
    (tmp_path / "bin" / "link").symlink_to("app")
    entries = {e.path: e for e in entries_from_tree(tmp_path, "/opt/app")}
    assert entries["/opt/app/bin/app"].mode == 0o755
    assert entries["/opt/app/README"].mode == 0o644
    assert entries["/opt/app/bin"].type == "dir"
    assert entries["/opt/app/bin/link"].linkname == "app"
    names = [m.name for m in _members(build_layer(entries.values(), mtime=0).blob)]
    assert names[:3] == ["opt", "opt/app", "opt/app/README"]


def _forget_encoding() -> None:
    """The encoding and libdeflate's fingerprint are computed once per process."""
    from crossplan.backends.oci import deflate

    deflate.layer_encoding.cache_clear()
    deflate.libdeflate_identity.cache_clear()


def _deflate_env(monkeypatch: pytest.MonkeyPatch, value: str) -> Iterator[None]:
    """``CROSSPLAN_LAYER_DEFLATE=value`` for one test (the encoding is cached per process)."""
    from crossplan.backends.oci import layers

    monkeypatch.setenv(layers.DEFLATE_ENV, value)
    _forget_encoding()
    yield
    monkeypatch.delenv(layers.DEFLATE_ENV)
    _forget_encoding()


@pytest.fixture
def igzip(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from _deflate_env(monkeypatch, "igzip")


@pytest.fixture
def zlib_blocks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from _deflate_env(monkeypatch, "zlib")


def test_blob_depends_on_the_tar_bytes_not_on_how_files_were_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, igzip: None,
) -> None:
    """igzip's output depends on how its input is split: the layer re-blocks the tar stream,
    so reading sources in other chunk sizes gives the same blob."""
    import random

    from crossplan.backends.oci import layers

    payload = random.Random(7).randbytes(3 << 20) + bytes(1 << 20)  # > 1 block, compressible
    (tmp_path / "big").write_bytes(payload)
    entries = [LayerEntry("/big", source=tmp_path / "big"), LayerEntry("/a", data=b"1")]
    one = build_layer(entries, mtime=0)
    monkeypatch.setattr(layers, "_CHUNK", 4096 + 7)
    other = build_layer(entries, mtime=0)
    assert other.digest == one.digest
    assert gzip.decompress(one.blob)[512:512 + len(b"1")] == b"1"  # /a comes first


def test_the_default_encoding_is_libdeflate_named_by_version_and_output() -> None:
    """Compressors' bytes change between versions: the encoding, hence every image key, names
    the binding's version, a fingerprint of libdeflate's output, the size past which zlib
    blocks take over, and that zlib's version (zlib-ng builds of libz write other bytes)."""
    import zlib

    import deflate

    from crossplan.backends.oci.layers import DEFLATE_ENV, layer_encoding

    assert os.environ.get(DEFLATE_ENV, "libdeflate") == "libdeflate"
    enc = layer_encoding()
    assert enc.startswith(f"gzip-1-libdeflate{deflate.__version__}.fp")
    assert enc.endswith(f".upto64m+zlib{zlib.ZLIB_RUNTIME_VERSION}.b1024k")
    assert ";" not in enc and "=" not in enc  # it sits in the image's pin string


def test_another_libdeflate_shows_in_the_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same binding version, other output (a binding built against another libdeflate):
    another encoding, so no key names bytes it did not describe."""
    import deflate

    from crossplan.backends.oci import deflate as ours

    ours.layer_encoding.cache_clear()
    ours.libdeflate_identity.cache_clear()
    try:
        ours_now = ours.layer_encoding()
        real = deflate.gzip_compress
        monkeypatch.setattr(deflate, "gzip_compress",
                            lambda data, level: real(bytes(data) + b"!", level))
        ours.layer_encoding.cache_clear()
        ours.libdeflate_identity.cache_clear()
        assert ours.layer_encoding() != ours_now
    finally:
        monkeypatch.undo()
        ours.layer_encoding.cache_clear()
        ours.libdeflate_identity.cache_clear()


def test_libdeflate_layers_are_one_member_and_past_the_limit_zlib_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Up to the limit, the blob is libdeflate's gzip of the whole tar; a tar over it (here a
    limit of 2 MiB) gives exactly the zlib-blocks blob of the same tar."""
    import random

    import deflate

    from crossplan.backends.oci import deflate as ours
    from crossplan.backends.oci import layers

    payload = random.Random(3).randbytes(1 << 20) + b"layer " * 500_000  # ~3.9 MiB
    small = build_layer([LayerEntry("/small", data=payload[:5000])], mtime=0)
    tar = gzip.decompress(small.blob)
    assert small.blob == bytes(deflate.gzip_compress(tar, 1))
    monkeypatch.setattr(ours, "WHOLE_LIMIT", 2 << 20)
    for cut in (len(payload), (2 << 20) + 3000):  # crossing in a whole block, or the last
        entries = [LayerEntry("/big", data=payload[:cut])]
        spilled = build_layer(entries, mtime=0)
        monkeypatch.setenv(layers.DEFLATE_ENV, "zlib")
        _forget_encoding()
        try:
            assert build_layer(entries, mtime=0).blob == spilled.blob
        finally:
            monkeypatch.delenv(layers.DEFLATE_ENV)
            _forget_encoding()
        assert _members(spilled.blob)[0].size == cut


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 700, 1 << 20, (3 << 20) + 5])
def test_zlib_blocks_make_one_valid_gzip_member_whatever_the_threads(
    size: int, monkeypatch: pytest.MonkeyPatch, zlib_blocks: None,
) -> None:
    """The tar is deflated in 1 MiB blocks on a pool of threads: the blob is one gzip member
    (what registries and runtimes read), its bytes the same with one thread or four."""
    import random
    import subprocess
    import zlib
    from concurrent.futures import ThreadPoolExecutor

    from crossplan.backends.oci import deflate

    rnd = random.Random(size)
    payload = b"".join(rnd.choice((rnd.randbytes(4096), b"crossplan " * 400))
                       for _ in range(size // 4000 + 1))[:size]
    entries = [LayerEntry("/big", data=payload)]
    digests = set()
    for workers in (1, 4):
        monkeypatch.setattr(deflate, "_pool", ThreadPoolExecutor(workers))
        layer = build_layer(entries, mtime=0)
        digests.add(layer.digest)
        assert layer.blob[:3] == b"\x1f\x8b\x08"
        tar = zlib.decompressobj(16 + zlib.MAX_WBITS)
        assert tar.decompress(layer.blob) == gzip.decompress(layer.blob)
        assert tar.eof and not tar.unused_data  # one member, nothing after it
        assert subprocess.run(["gzip", "-t"], input=layer.blob).returncode == 0
    assert len(digests) == 1
    (member,) = _members(layer.blob)
    assert member.size == size


def test_layer_encoding_names_the_deflater_and_what_its_bytes_depend_on(igzip: None) -> None:
    import isal  # a dependency (pyproject.toml): `pip install -e .` if this fails

    from crossplan.backends.oci.layers import layer_encoding

    enc = layer_encoding()
    assert enc.startswith(f"igzip-1-isal{isal.ISAL_VERSION}-")
    assert enc.endswith(os.uname().machine) or f"{os.uname().machine}-" in enc


def test_without_isal_layers_are_the_default_encoding_and_say_so(
    monkeypatch: pytest.MonkeyPatch, igzip: None,
) -> None:
    import sys

    from crossplan.backends.oci import layers

    igzip = build_layer(_entries(), mtime=EPOCH)
    monkeypatch.setitem(sys.modules, "isal", None)  # `import isal` raises ImportError
    _forget_encoding()
    try:
        assert layers.layer_encoding().startswith("gzip-1-libdeflate")
        default = build_layer(_entries(), mtime=EPOCH)
    finally:
        _forget_encoding()
    assert default.diff_id == igzip.diff_id  # the same tar
    assert default.digest != igzip.digest  # other bytes: hence the encoding in the key
    assert gzip.decompress(default.blob) == gzip.decompress(igzip.blob)


def test_without_libdeflate_layers_are_zlib_blocks_and_say_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from crossplan.backends.oci import layers

    whole = build_layer(_entries(), mtime=EPOCH)
    monkeypatch.setitem(sys.modules, "deflate", None)
    _forget_encoding()
    try:
        assert layers.layer_encoding().startswith("gzip-1-zlib")
        blocks = build_layer(_entries(), mtime=EPOCH)
    finally:
        _forget_encoding()
    assert blocks.diff_id == whole.diff_id and blocks.digest != whole.digest


def test_a_built_layer_is_not_hashed_again_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """The layer's digest was computed from its bytes: writing it into a layout does not
    hash 15 MB a second time; any other in-memory blob is still verified."""
    import hashlib

    from crossplan.backends.oci import blobs as blobs_module
    from crossplan.backends.oci.descriptor import Descriptor

    verified: list[str] = []
    real = blobs_module.verify_digest

    def counting(data: bytes, digest: str, *, what: str) -> bytes:
        verified.append(digest)
        return real(data, digest, what=what)

    monkeypatch.setattr(blobs_module, "verify_digest", counting)
    layer = build_layer([LayerEntry("/a", data=b"x" * 1000)], mtime=0)
    blob = layer.as_blob()
    assert gzip.decompress(blob.read())[512:1512] == b"x" * 1000 and verified == []
    data = b"config"
    other = blobs_module.Blob(
        Descriptor("application/octet-stream", "sha256:" + hashlib.sha256(data).hexdigest(), 6),
        blobs_module.MemoryBlobs({"sha256:" + hashlib.sha256(data).hexdigest(): data}))
    assert other.read() == data and len(verified) == 1
