"""Streaming blob transfers: the chunked upload and the verifying download of the registry
client against an injected transport, the store's streaming put, and the remote cache's
push/fetch through them (corrupt or cut-short bytes never enter the store)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from crossplan.backends.oci import (
    ImageSpec,
    LayerEntry,
    LayerSpec,
    RegistryClient,
    RegistryError,
    build_index,
    pull_base,
    push_index,
    sha256_digest,
)
from crossplan.backends.oci.blobs import FileBlobSource
from crossplan.backends.oci.descriptor import DigestMismatch
from crossplan.cache.artifact import BlobRef
from crossplan.cache.store import BlobMismatch, Entry, OutputFile, Store
from crossplan.cache.transfer import StreamingRegistry, Transfer
from crossplan.hashing import hash_bytes
from crossplan.platforms import Platform

Handler = Callable[[httpx.Request], httpx.Response]
DATA = bytes(range(256)) * 40  # 10240 bytes
DIGEST = sha256_digest(DATA)
KEY = "ab" * 32


def client_for(handler: Handler) -> RegistryClient:
    return RegistryClient(
        "127.0.0.1:5000", transport=httpx.MockTransport(handler),
        credentials=lambda _r: None, sleep=lambda _s: None,
    )


def opener(data: bytes) -> Callable[[], io.BytesIO]:
    return lambda: io.BytesIO(data)


# -- upload ----------------------------------------------------------------------------------
def test_chunked_upload_patches_ranges_follows_locations_then_puts_the_digest() -> None:
    requests: list[tuple[str, str, dict[str, str], bytes]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = request.read()
        requests.append((request.method, str(request.url), dict(request.headers), body))
        n = len(requests)
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": "/v2/demo/blobs/uploads/u?_state=0"})
        if request.method == "PATCH":
            end = int(request.headers["content-range"].split("-")[1])
            return httpx.Response(202, headers={
                "Location": f"/v2/demo/blobs/uploads/u?_state={n}", "Range": f"0-{end}"})
        return httpx.Response(201)

    client_for(handler).upload_blob_from("demo", DIGEST, len(DATA), opener(DATA), chunk_size=4096)
    methods = [r[0] for r in requests]
    assert methods == ["POST", "PATCH", "PATCH", "PATCH", "PUT"]
    patches = requests[1:4]
    assert [p[2]["content-range"] for p in patches] == ["0-4095", "4096-8191", "8192-10239"]
    assert [p[2]["content-length"] for p in patches] == ["4096", "4096", "2048"]
    assert b"".join(p[3] for p in patches) == DATA
    # every PATCH goes to the Location the previous answer named; the PUT to the last one
    assert [p[1].split("_state=")[1] for p in patches] == ["0", "2", "3"]
    _, url, headers, body = requests[4]
    assert re.search(r"_state=4&digest=sha256%3A[0-9a-f]{64}$", url) and body == b""
    assert headers["content-length"] == "0"


def test_small_blob_goes_in_one_streamed_put() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        requests.append(request)
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": "/v2/demo/blobs/uploads/u1"})
        return httpx.Response(201)

    client_for(handler).upload_blob_from("demo", DIGEST, len(DATA), opener(DATA))
    post, put = requests
    assert post.method == "POST"
    assert put.method == "PUT" and dict(put.url.params) == {"digest": DIGEST}
    assert put.content == DATA and put.headers["content-length"] == str(len(DATA))


@pytest.mark.parametrize("patch_answer", [
    httpx.Response(404, json={"errors": [{"code": "BLOB_UPLOAD_UNKNOWN"}]}),  # session lost
    httpx.Response(202, headers={"Location": "/up/a", "Range": "0-1"}),  # holds other bytes
    httpx.Response(405),  # no chunked uploads here
])
def test_a_failed_chunked_session_is_started_over_as_one_streamed_put(
    patch_answer: httpx.Response,
) -> None:
    seen: list[tuple[str, str]] = []
    sessions = iter(["a", "b", "c"])
    put_bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = request.read()
        seen.append((request.method, request.url.path))
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": f"/up/{next(sessions)}"})
        if request.method == "PATCH":
            return patch_answer
        put_bodies.append(body)
        return httpx.Response(201)

    client_for(handler).upload_blob_from("demo", DIGEST, len(DATA), opener(DATA),
                                         chunk_size=8192)
    assert seen == [("POST", "/v2/demo/blobs/uploads/"), ("PATCH", "/up/a"),
                    ("POST", "/v2/demo/blobs/uploads/"), ("PUT", "/up/b")]
    assert put_bodies == [DATA]


def test_an_upload_failing_twice_raises() -> None:
    methods: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        methods.append(request.method)
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": "/up/x"})
        if request.method == "PATCH":
            end = request.headers["content-range"].split("-")[1]
            return httpx.Response(202, headers={"Location": "/up/x", "Range": f"0-{end}"})
        return httpx.Response(400, json={"errors": [{"code": "DIGEST_INVALID"}]})

    with pytest.raises(RegistryError, match="DIGEST_INVALID") as err:
        client_for(handler).upload_blob_from("demo", DIGEST, 4096 + 10, opener(DATA[:4106]),
                                             chunk_size=4096)
    assert err.value.status == 400
    assert methods == ["POST", "PATCH", "PATCH", "PUT", "POST", "PUT"]


def test_a_retried_chunk_is_read_again_from_the_source() -> None:
    bodies: list[bytes] = []
    opened = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": "/up/x"})
        bodies.append(request.read())
        if request.method == "PUT" and len(bodies) == 1:
            return httpx.Response(503)
        return httpx.Response(201)

    def counted() -> io.BytesIO:
        opened.append(1)
        return io.BytesIO(DATA)

    client_for(handler).upload_blob_from("demo", DIGEST, len(DATA), counted)
    assert bodies == [DATA, DATA] and len(opened) == 2


# -- download --------------------------------------------------------------------------------
def chunked(*parts: bytes, fail_after: int | None = None) -> Iterator[bytes]:
    for i, part in enumerate(parts):
        if fail_after is not None and i == fail_after:
            raise httpx.ReadError("connection reset mid-body")
        yield part


def test_iter_blob_streams_and_checks_the_digest_after_the_last_chunk() -> None:
    good = client_for(lambda r: httpx.Response(200, content=chunked(DATA[:5000], DATA[5000:])))
    assert b"".join(good.iter_blob("demo", DIGEST)) == DATA

    bad = client_for(lambda r: httpx.Response(200, content=chunked(DATA[:5000], b"x" * 5240)))
    got = []
    with pytest.raises(DigestMismatch, match="expected " + DIGEST):
        for chunk in bad.iter_blob("demo", DIGEST):
            got.append(chunk)
    assert got  # the chunks came through; the consumer must discard them

    long = client_for(lambda r: httpx.Response(200, content=DATA + b"more"))
    with pytest.raises(DigestMismatch, match="more than"):
        b"".join(long.iter_blob("demo", DIGEST, size=len(DATA)))

    missing = client_for(lambda r: httpx.Response(404, json={"errors": []}))
    with pytest.raises(RegistryError) as err:
        list(missing.iter_blob("demo", DIGEST))
    assert err.value.status == 404


# -- the store -------------------------------------------------------------------------------
def stored_files(store: Store) -> list[Path]:
    return [p for p in (store.root / "blobs").rglob("*") if p.is_file()]


def test_put_stream_hashes_while_writing(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    digest, size = store.put_stream(iter([DATA[:10], DATA[10:]]), expect=hash_bytes(DATA))
    assert (digest, size) == (hash_bytes(DATA), len(DATA))
    assert store.blob_path(digest).read_bytes() == DATA
    assert store.put_stream(iter([DATA])) == (digest, size)  # already there: fine
    assert not any((store.root / "tmp").iterdir())


def test_put_stream_stores_nothing_when_the_bytes_or_the_stream_go_wrong(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    with pytest.raises(BlobMismatch):
        store.put_stream(iter([DATA]), expect="0" * 64)
    with pytest.raises(httpx.ReadError):
        store.put_stream(chunked(DATA[:10], DATA[10:], fail_after=1))
    assert stored_files(store) == []
    assert not any((store.root / "tmp").iterdir())


# -- the remote cache through the streaming client -------------------------------------------
class MemRegistry:
    """The distribution API in memory, as an httpx handler (chunked uploads included)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, bytes] = {}
        self.uploads: dict[str, bytes] = {}
        self.serve: Callable[[bytes], httpx.Response] | None = None
        self.methods: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        path, method = request.url.path, request.method
        self.methods.append(method)
        if path == "/v2/":
            return httpx.Response(200)
        if "/blobs/uploads/" in path:
            uid = path.rsplit("/", 1)[1] or str(len(self.uploads))
            if method == "POST":
                self.uploads[uid] = b""
                return httpx.Response(202, headers={"Location": f"/v2/r/blobs/uploads/{uid}"})
            self.uploads[uid] += body
            if method == "PATCH":
                end = len(self.uploads[uid]) - 1
                return httpx.Response(202, headers={"Location": path, "Range": f"0-{end}"})
            data = self.uploads.pop(uid)
            if sha256_digest(data) != request.url.params["digest"]:
                return httpx.Response(400, json={"errors": [{"code": "DIGEST_INVALID"}]})
            self.blobs[request.url.params["digest"]] = data
            return httpx.Response(201)
        name = path.rsplit("/", 1)[1]
        if "/manifests/" in path:
            if method == "PUT":
                self.manifests[name] = body
                return httpx.Response(201)
            if name not in self.manifests:
                return httpx.Response(404)
            ct = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
            return httpx.Response(200, content=self.manifests[name], headers=ct)
        if name not in self.blobs:
            return httpx.Response(404)
        if method == "HEAD":
            return httpx.Response(200)
        data = self.blobs[name]
        if self.serve is not None and len(data) == len(DATA):
            return self.serve(data)
        return httpx.Response(200, content=chunked(data[:4000], data[4000:]))


def pushed(tmp_path: Path) -> tuple[MemRegistry, RegistryClient, Entry, Store]:
    src = Store(tmp_path / "src")
    digest, size = src.put_stream(iter([DATA]))
    entry = Entry(KEY, "big", (OutputFile("big.bin", digest, 0o644, size),), None, 1.0, 2.0, {})
    src.publish(entry)
    mem = MemRegistry()
    client = client_for(mem)
    assert isinstance(client, StreamingRegistry)
    assert Transfer(client, src, "r", "reg/r").push(entry)
    return mem, client, entry, Store(tmp_path / "dst")


def test_push_then_fetch_stream_both_ways(tmp_path: Path) -> None:
    mem, client, entry, dst = pushed(tmp_path)
    assert DATA in mem.blobs.values() and "PUT" in mem.methods
    transfer = Transfer(client, dst, "r", "reg/r")
    art = transfer.lookup(KEY)
    assert art is not None and art.entry.digests() == entry.digests()
    for ref in art.blobs:
        assert transfer.fetch_blob(KEY, ref)
    assert dst.blob_path(hash_bytes(DATA)).read_bytes() == DATA


@pytest.mark.parametrize("serve", [
    lambda d: httpx.Response(200, content=chunked(d[:4000], b"\0" * 6240)),  # corrupt chunk
    lambda d: httpx.Response(200, content=chunked(d[:4000])),  # truncated
    lambda d: httpx.Response(200, content=chunked(d, b"tail")),  # too long
])
def test_corrupt_bytes_never_enter_the_store(
    tmp_path: Path, serve: Callable[[bytes], httpx.Response]
) -> None:
    mem, client, _entry, dst = pushed(tmp_path)
    mem.serve = serve
    transfer = Transfer(client, dst, "r", "reg/r")
    art = transfer.lookup(KEY)
    assert art is not None
    with pytest.raises(DigestMismatch):
        transfer.fetch_blob(KEY, art.blobs[0])
    assert stored_files(dst) == [] and not any((dst.root / "tmp").iterdir())


def test_wrong_blake3_behind_a_right_sha256_is_refused(tmp_path: Path) -> None:
    _mem, client, _entry, dst = pushed(tmp_path)
    ref = BlobRef("0" * 64, DIGEST, len(DATA))
    with pytest.raises(DigestMismatch, match="blake3"):
        Transfer(client, dst, "r", "reg/r").fetch_blob(KEY, ref)
    assert stored_files(dst) == []


def test_a_download_cut_short_is_started_over(tmp_path: Path) -> None:
    mem, client, _entry, dst = pushed(tmp_path)
    cuts = [1]

    def flaky(d: bytes) -> httpx.Response:
        if cuts:
            cuts.pop()
            return httpx.Response(200, content=chunked(d[:4000], d[4000:], fail_after=1))
        return httpx.Response(200, content=d)

    mem.serve = flaky
    ref = BlobRef(hash_bytes(DATA), DIGEST, len(DATA))
    assert Transfer(client, dst, "r", "reg/r").fetch_blob(KEY, ref)
    assert dst.blob_path(ref.blake3).read_bytes() == DATA
    assert not any((dst.root / "tmp").iterdir())


# -- image publishing ------------------------------------------------------------------------
def test_base_layers_copied_to_another_registry_stream_through_a_verified_file() -> None:
    amd64 = Platform("linux", "amd64")
    a, b = MemRegistry(), MemRegistry()
    client_a = RegistryClient("127.0.0.1:5001", transport=httpx.MockTransport(a))
    client_b = RegistryClient("127.0.0.1:5000", transport=httpx.MockTransport(b))
    layer = LayerSpec((LayerEntry("/big", data=DATA),), "build")
    base = build_index({amd64: ImageSpec(layers=[layer], created=7)})
    push_index(base, "127.0.0.1:5001/lib/base:1", client=client_a)
    pulled = pull_base("127.0.0.1:5001/lib/base:1", [amd64], client=client_a)
    sources = [blob.source for blob in pulled[amd64].layers]
    assert sources and all(isinstance(s, FileBlobSource) for s in sources)

    child = build_index({amd64: ImageSpec(base=pulled[amd64], layers=[], created=7)})
    result = push_index(child, "127.0.0.1:5000/demo/app:1", client=client_b)
    assert result.blobs_uploaded == len(child.blobs)
    assert all(b.blobs[d] == a.blobs[d] for d in base.blobs if d in a.blobs)

    layer_digest = pulled[amd64].layers[0].digest
    good = a.blobs[layer_digest]
    a.blobs[layer_digest] = good[:100] + bytes([good[100] ^ 1]) + good[101:]  # corrupt it
    source = pulled[amd64].layers[0].source
    assert isinstance(source, FileBlobSource)
    with pytest.raises(DigestMismatch), source.blob_file(layer_digest):
        pass  # never handed over
