"""The native fan-out's merge (crossplan.release.merge, .merge_push): an index assembled
from per-platform records is byte for byte the one a single runner builds; records round
trip; a missing or inconsistent platform publishes nothing; pushes against a fake registry
put the manifests by digest, then the index, then the tags."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from test_oci_publish import FakeRegistry

from crossplan.backends.oci import (
    BuiltIndex,
    ImageSpec,
    LayerEntry,
    LayerSpec,
    RegistryClient,
    build_index,
    sha256_digest,
)
from crossplan.errors import RecipeError
from crossplan.platforms import Platform
from crossplan.release.merge import (
    PlatformRecord,
    assemble_index,
    merge_records,
    read_records,
    write_record,
)
from crossplan.release.merge_push import publish_merged, push_platform

AMD64, ARM64, ARMV7 = (Platform.parse(p) for p in ("linux/amd64", "linux/arm64", "linux/arm/v7"))
PLATFORMS = (AMD64, ARM64, ARMV7)
TAGS = ("127.0.0.1:5000/team/app:1.0", "127.0.0.1:5000/team/app:latest")


def spec(p: Platform) -> ImageSpec:
    entry = LayerEntry("/app", data=f"app for {p}".encode())
    return ImageSpec(layers=[LayerSpec((entry,), "build")], created=7, entrypoint=["/app"])


def single(p: Platform) -> BuiltIndex:
    """What `plan run --platform P` builds: a one-platform index."""
    return build_index({p: spec(p)}, created=7, revision="abc", source="https://x/y")


def records(platforms: tuple[Platform, ...] = PLATFORMS) -> list[PlatformRecord]:
    out = []
    for p in platforms:
        built = single(p)
        notes = json.loads(built.index)["annotations"]
        out.append(PlatformRecord("image", built.images[p].descriptor, PLATFORMS, TAGS, True,
                                  notes))
    return out


def test_merged_index_is_the_single_runner_index() -> None:
    everything = build_index({p: spec(p) for p in PLATFORMS}, created=7, revision="abc",
                             source="https://x/y")
    for order in (records(), list(reversed(records()))):
        [merged] = merge_records(order)
        assert merged.index == everything.index
        assert merged.digest == everything.digest
        assert [r.platform for r in merged.records] == sorted(PLATFORMS)


def test_records_round_trip(tmp_path: Path) -> None:
    for rec in records():
        path = write_record(tmp_path / "d", rec)
        assert path.name == f"image@{str(rec.platform).replace('/', '-')}.json"
    assert read_records(tmp_path / "d") == sorted(records(), key=lambda r: r.file_name())
    member = replace(records()[0], step="services/api:image")
    assert "/" not in member.file_name() and ":" not in member.file_name()


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda rs: rs[:2], "no record for linux/arm/v7"),
    (lambda rs: [rs[0], rs[1], replace(rs[2], tags=("127.0.0.1:5000/other:1",))],
     "disagree on tags"),
    (lambda rs: [rs[0], rs[1], replace(rs[2], annotations={})], "disagree on annotations"),
    (lambda rs: [*rs, replace(rs[0], manifest=rs[1].manifest.__class__(
        rs[0].manifest.media_type, "sha256:" + "0" * 64, 1, AMD64))], "two different manifests"),
])
def test_inconsistent_records_publish_nothing(mutate: object, message: str) -> None:
    with pytest.raises(RecipeError) as info:
        merge_records(mutate(records()))  # type: ignore[operator]
    assert message in str(info.value)


def test_bad_record_files(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="no platform image records"):
        read_records(tmp_path)
    (tmp_path / "x.json").write_text('{"kind": "something else"}')
    with pytest.raises(RecipeError, match="not a platform image record"):
        read_records(tmp_path)


def test_assemble_needs_platforms() -> None:
    d = single(AMD64).images[AMD64].descriptor
    with pytest.raises(RecipeError):
        assemble_index([replace(d, platform=None)], {})
    with pytest.raises(RecipeError):
        assemble_index([], {})


def test_push_platform_then_publish(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRegistry()

    def client(registry: str) -> RegistryClient:
        return RegistryClient(registry, transport=httpx.MockTransport(fake),
                              sleep=lambda _: None)

    import crossplan.backends.oci.publish as publish

    monkeypatch.setattr(publish, "RegistryClient", lambda registry, **_: client(registry))
    recs = []
    for p in PLATFORMS:
        recs += push_platform(single(p), step="image", tags=TAGS, arch_tags=True,
                              platforms=PLATFORMS)
    assert not [t for t in fake.manifests["team/app"] if not t.startswith("sha256:")]  # no tag
    [merged] = merge_records(recs)
    [result] = publish_merged(merged, client)
    store = fake.manifests["team/app"]
    assert sha256_digest(store["1.0"][0]) == merged.digest == result.digest
    assert store["latest"][0] == merged.index
    for p in PLATFORMS:
        for tag in ("1.0", "latest"):
            assert sha256_digest(store[f"{tag}-{p.arch_variant}"][0]) == single(p).manifests[p]
    writes = [path for method, path in fake.writes() if "/manifests/" in path]
    assert writes.index(f"/v2/team/app/manifests/{merged.digest}") < writes.index(
        "/v2/team/app/manifests/1.0")
    [again] = publish_merged(merged, client)
    assert again.tags_written == () and set(again.tags) == set(result.tags_written)


def test_publish_refuses_a_missing_manifest() -> None:
    fake = FakeRegistry()
    [merged] = merge_records(records())

    def client(registry: str) -> RegistryClient:
        return RegistryClient(registry, transport=httpx.MockTransport(fake),
                              sleep=lambda _: None)

    with pytest.raises(Exception, match="publish-platform"):
        publish_merged(merged, client)
    assert not fake.writes()
