"""Push and pull against an in-memory fake registry (a MockTransport handler)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest

from crossplan.backends.oci import (
    BuiltIndex,
    ImageSpec,
    LayerEntry,
    LayerSpec,
    RegistryClient,
    build_index,
    export,
    pull_base,
    push_index,
    resolve_base,
    sha256_digest,
    validate_index,
)
from crossplan.errors import RecipeError
from crossplan.platforms import Platform

AMD64 = Platform("linux", "amd64")
ARMV7 = Platform("linux", "arm", "v7")
REGISTRY = "127.0.0.1:5000"
_PATH = re.compile(r"^/v2/(?P<repo>.+)/(?P<kind>blobs|manifests|tags)/(?P<rest>.*)$")
WRITES = {"PUT", "POST", "PATCH", "DELETE"}


class FakeRegistry:
    """Just enough of the distribution API, with a request log."""

    def __init__(self) -> None:
        self.blobs: dict[str, dict[str, bytes]] = {}
        self.manifests: dict[str, dict[str, tuple[bytes, str]]] = {}
        self.uploads: dict[str, str] = {}
        self.log: list[tuple[str, str]] = []

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.log if m in WRITES]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.log.append((request.method, request.url.path))
        match = _PATH.match(request.url.path)
        if match is None:
            return httpx.Response(200 if request.url.path == "/v2/" else 404)
        repo, kind, rest = match["repo"], match["kind"], match["rest"]
        if kind == "blobs":
            return self._blob(request, repo, rest)
        if kind == "manifests":
            return self._manifest(request, repo, rest)
        tags = [t for t in self.manifests.get(repo, {}) if not t.startswith("sha256:")]
        return httpx.Response(200, json={"name": repo, "tags": sorted(tags)})

    def _blob(self, request: httpx.Request, repo: str, rest: str) -> httpx.Response:
        store = self.blobs.setdefault(repo, {})
        if rest == "uploads/" and request.method == "POST":
            mount, source = request.url.params.get("mount"), request.url.params.get("from")
            if mount and source and mount in self.blobs.get(source, {}):
                store[mount] = self.blobs[source][mount]
                return httpx.Response(201)
            upload = uuid.uuid4().hex
            self.uploads[upload] = repo
            return httpx.Response(202, headers={"Location": f"/v2/{repo}/blobs/uploads/{upload}"})
        if rest.startswith("uploads/") and request.method == "PUT":
            digest = request.url.params["digest"]
            if self.uploads.pop(rest.split("/")[1], None) != repo:
                return httpx.Response(404)
            assert sha256_digest(request.content) == digest
            store[digest] = request.content
            return httpx.Response(201)
        if rest not in store:
            return httpx.Response(404)
        return httpx.Response(200, content=store[rest] if request.method == "GET" else b"")

    def _manifest(self, request: httpx.Request, repo: str, ref: str) -> httpx.Response:
        store = self.manifests.setdefault(repo, {})
        if request.method == "PUT":
            body, ct = request.content, request.headers["content-type"]
            doc = json.loads(body)
            for child in [*doc.get("manifests", []), *doc.get("layers", [])]:
                present = child["digest"] in store or child["digest"] in self.blobs.get(repo, {})
                assert present, "registry would reject a manifest with missing references"
            store[ref] = store[sha256_digest(body)] = (body, ct)
            return httpx.Response(201)
        if ref not in store:
            return httpx.Response(404)
        body, ct = store[ref]
        return httpx.Response(200, content=body, headers={"Content-Type": ct})


def _built(text: str = "one") -> BuiltIndex:
    return build_index(
        {
            p: ImageSpec(
                layers=[LayerSpec((LayerEntry("/app", data=f"{text} {p}".encode()),), "build")],
                created=7,
            )
            for p in (AMD64, ARMV7)
        }
    )


@pytest.fixture
def fake() -> FakeRegistry:
    return FakeRegistry()


def _client(fake: FakeRegistry) -> RegistryClient:
    return RegistryClient(REGISTRY, transport=httpx.MockTransport(fake), sleep=lambda _: None)


def test_push_order_and_second_push_writes_nothing(fake: FakeRegistry) -> None:
    built = _built()
    first = push_index(built, f"{REGISTRY}/demo/app:1.0", tags=["latest"], client=_client(fake))
    assert (first.blobs_uploaded, first.manifests_uploaded) == (4, 3)
    assert first.tags_written == ("1.0", "latest") and not first.up_to_date
    assert first.index_digest == built.digest and first.manifests == built.manifests
    writes = fake.writes()
    manifest_puts = [p for m, p in writes if "/manifests/" in p]
    assert manifest_puts[-2:] == ["/v2/demo/app/manifests/1.0", "/v2/demo/app/manifests/latest"]
    assert manifest_puts[-3] == f"/v2/demo/app/manifests/{built.digest}"
    assert all("/blobs/" in p for _, p in writes[: len(writes) - len(manifest_puts)])
    fake.log.clear()
    second = push_index(built, f"{REGISTRY}/demo/app:1.0", tags=["latest"], client=_client(fake))
    assert second.up_to_date and fake.writes() == []
    assert "up to date" in second.summary()


def test_existing_blobs_are_skipped(fake: FakeRegistry) -> None:
    push_index(_built("one"), f"{REGISTRY}/demo/app:1", client=_client(fake))
    fake.log.clear()
    result = push_index(_built("two"), f"{REGISTRY}/demo/app:2", client=_client(fake))
    assert result.blobs_uploaded == 4  # two new layers, two new configs
    same_files = {p: (LayerEntry("/app", data=f"one {p}".encode()),) for p in (AMD64, ARMV7)}
    built = build_index(  # same layers as "one", different history -> different configs
        {
            p: ImageSpec(layers=[LayerSpec(e, "other step")], created=7)
            for p, e in same_files.items()
        }
    )
    result = push_index(built, f"{REGISTRY}/demo/app:3", client=_client(fake))
    assert result.blobs_skipped == 2 and result.blobs_uploaded == 2  # layers shared with "one"


def test_moving_a_tag_rewrites_only_the_tag(fake: FakeRegistry) -> None:
    push_index(_built("one"), f"{REGISTRY}/demo/app:1", tags=["latest"], client=_client(fake))
    push_index(_built("two"), f"{REGISTRY}/demo/app:2", client=_client(fake))
    fake.log.clear()
    result = push_index(_built("two"), f"{REGISTRY}/demo/app:latest", client=_client(fake))
    assert result.blobs_skipped == 4 and result.manifests_skipped == 3
    assert fake.writes() == [("PUT", "/v2/demo/app/manifests/latest")]


def test_arch_tags_point_at_platform_manifests(fake: FakeRegistry) -> None:
    built = _built()
    push_index(built, f"{REGISTRY}/demo/app:1.0", arch_tags=True, client=_client(fake))
    store = fake.manifests["demo/app"]
    assert sha256_digest(store["1.0-amd64"][0]) == built.manifests[AMD64]
    assert sha256_digest(store["1.0-armv7"][0]) == built.manifests[ARMV7]
    assert sha256_digest(store["1.0"][0]) == built.digest


def test_interrupted_push_never_tags_incomplete_index(fake: FakeRegistry) -> None:
    class Crashing(RegistryClient):
        def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
            if ref == "1.0":
                raise KeyboardInterrupt
            return super().put_manifest(repo, ref, data, media_type)

    built = _built()
    crashing = Crashing(REGISTRY, transport=httpx.MockTransport(fake))
    with pytest.raises(KeyboardInterrupt):
        push_index(built, f"{REGISTRY}/demo/app:1.0", client=crashing)
    assert "1.0" not in fake.manifests["demo/app"]
    result = push_index(built, f"{REGISTRY}/demo/app:1.0", client=_client(fake))
    assert result.blobs_skipped == 4 and result.manifests_skipped == 3
    assert result.tags_written == ("1.0",)


def test_mount_from_origin_on_same_registry(fake: FakeRegistry) -> None:
    base_index = _built("base")
    push_index(base_index, f"{REGISTRY}/lib/base:1", client=_client(fake))
    bases = pull_base(f"{REGISTRY}/lib/base:1", [AMD64, ARMV7], client=_client(fake))
    child = build_index(
        {
            p: ImageSpec(base=b, layers=[LayerSpec((LayerEntry("/x", data=b"x"),), "x")])
            for p, b in bases.items()
        }
    )
    fake.log.clear()
    result = push_index(child, f"{REGISTRY}/demo/child:1", client=_client(fake))
    assert result.blobs_mounted == 2  # the base layers
    assert not any(m == "GET" and "/blobs/" in p for m, p in fake.log)  # never downloaded


def test_pull_base_fetches_only_what_is_needed(fake: FakeRegistry) -> None:
    built = _built("base")
    push_index(built, f"{REGISTRY}/lib/base:1", client=_client(fake))
    fake.log.clear()
    bases = pull_base(f"{REGISTRY}/lib/base:1", [ARMV7], client=_client(fake))
    base = bases[ARMV7]
    assert base.digest == built.manifests[ARMV7]
    assert base.pinned == f"{REGISTRY}/lib/base@{built.digest}"
    config_digest = json.loads(built.images[ARMV7].manifest)["config"]["digest"]
    assert fake.log == [
        ("GET", "/v2/lib/base/manifests/1"),
        ("GET", f"/v2/lib/base/manifests/{built.manifests[ARMV7]}"),
        ("GET", f"/v2/lib/base/blobs/{config_digest}"),
    ]
    assert base.layers[0].read() == built.blobs[base.layers[0].digest].read()
    child = build_index({ARMV7: ImageSpec(base=base)})
    assert validate_index(child) == []


def test_pull_base_verifies_and_reports(fake: FakeRegistry) -> None:
    built = _built("base")
    push_index(built, f"{REGISTRY}/lib/base:1", client=_client(fake))
    with pytest.raises(RecipeError, match="not found"):
        pull_base(f"{REGISTRY}/lib/base:nope", [AMD64], client=_client(fake))
    with pytest.raises(RecipeError, match="has no linux/arm64"):
        pull_base(f"{REGISTRY}/lib/base:1", [Platform("linux", "arm64")], client=_client(fake))
    body, ct = fake.manifests["lib/base"][built.manifests[AMD64]]
    fake.manifests["lib/base"][built.manifests[AMD64]] = (body + b" ", ct)
    with pytest.raises(Exception, match="expected sha256"):
        pull_base(f"{REGISTRY}/lib/base@{built.digest}", [AMD64], client=_client(fake))


def test_resolve_base_dispatch(fake: FakeRegistry) -> None:
    assert resolve_base("scratch", [AMD64]) == {AMD64: None}
    assert resolve_base(None, [AMD64, ARMV7]) == {AMD64: None, ARMV7: None}
    built = _built("base")
    push_index(built, f"{REGISTRY}/lib/base:1", client=_client(fake))
    found: dict[Platform, Any] = resolve_base(
        f"docker://{REGISTRY}/lib/base:1", [AMD64], transport=httpx.MockTransport(fake)
    )
    assert found[AMD64].digest == built.manifests[AMD64]


def test_export_to_registry(fake: FakeRegistry) -> None:
    built = _built()
    result = export(
        built, f"{REGISTRY}/demo/app:1", tags=["2"], transport=httpx.MockTransport(fake)
    )
    assert result.push is not None and result.push.tags_written == ("1", "2")
    assert result.index_digest == built.digest and result.path is None
    assert built.digest in result.summary()
