"""plan load's pure parts: default tags, picking one platform's manifest out of a stored OCI
layout (index or single manifest), the single-platform archive docker load gets, and
load_platform against a fake engine and store."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.images.load import (
    CONTAINERD_NAME,
    default_tag,
    load_platform,
    normalized,
    platform_archive,
    select_manifest,
)
from crossplan.platforms import Platform

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _put(layout: Path, data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest.split(":")[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": digest, "size": len(data)}


def _image(layout: Path, arch: str, variant: str = "") -> dict[str, Any]:
    cfg = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
    config = _put(layout, json.dumps(cfg).encode())
    layer = _put(layout, f"layer of {arch}".encode())
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}]}
    return {"mediaType": MANIFEST, **_put(layout, json.dumps(manifest).encode())}


def make_layout(layout: Path, arches: list[str], *, single: bool = False) -> None:
    layout.mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    if single:
        top = _image(layout, arches[0])
    else:
        manifests = []
        for a in arches:
            arch, _, variant = a.partition("/")
            manifests.append({**_image(layout, arch, variant), "platform": {
                "os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}})
        manifests.append({"mediaType": MANIFEST, **_put(layout, b"{}"),  # an attestation
                          "platform": {"os": "unknown", "architecture": "unknown"}})
        top = {"mediaType": INDEX, **_put(layout, json.dumps(
            {"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}).encode())}
    (layout / "index.json").write_text(json.dumps(
        {"schemaVersion": 2, "manifests": [{**top, "annotations": {
            "org.opencontainers.image.ref.name": "1.0"}}]}))


@pytest.mark.parametrize(("project", "step", "tags", "want"), [
    ("hello", "image", ("localhost:5000/demo/hello:1.0",), "localhost:5000/demo/hello:1.0"),
    ("hello", "image", (), "crossplan/hello-image:dev"),
    ("My Proj", "services/api-go:image", (), "crossplan/my-proj-services-api-go-image:dev"),
    ("__", "--", (), "crossplan/image-image:dev"),
])
def test_default_tag(project: str, step: str, tags: tuple[str, ...], want: str) -> None:
    assert default_tag(project, step, tags) == want
    normalized(want)  # always a valid reference


@pytest.mark.parametrize(("tag", "want"), [
    ("foo", "docker.io/library/foo:latest"),
    ("crossplan/x:dev", "docker.io/crossplan/x:dev"),
    ("localhost:5000/demo/hello:1.0", "localhost:5000/demo/hello:1.0"),
])
def test_normalized(tag: str, want: str) -> None:
    assert str(normalized(tag)) == want


@pytest.mark.parametrize("bad", ["Foo:1", "a@sha256:" + "0" * 64, "x y", ""])
def test_bad_tag_is_a_usage_error(bad: str) -> None:
    with pytest.raises(RecipeError):
        normalized(bad)


@pytest.mark.parametrize(("arches", "single", "want", "found"), [
    (["amd64", "arm64"], False, "linux/arm64", True),
    (["amd64", "arm64"], False, "linux/amd64", True),
    (["amd64", "arm/v7"], False, "linux/arm/v7", True),
    (["amd64", "arm64"], False, "linux/riscv64", False),
    (["arm64"], True, "linux/arm64", True),
    (["arm64"], True, "linux/amd64", False),
])
def test_select_manifest(tmp_path: Path, arches: list[str], single: bool, want: str,
                         found: bool) -> None:
    layout = tmp_path / "oci"
    make_layout(layout, arches, single=single)
    _, desc, have = select_manifest(layout, Platform.parse(want))
    assert have == [str(Platform.parse(f"linux/{a}")) for a in arches]  # no unknown/unknown
    assert bool(desc) == found
    if found:
        assert desc["platform"]["architecture"] == Platform.parse(want).arch


def test_platform_archive_holds_one_manifest(tmp_path: Path) -> None:
    layout = tmp_path / "oci"
    make_layout(layout, ["amd64", "arm64"])
    _, desc, _ = select_manifest(layout, Platform.parse("linux/arm64"))
    archive = tmp_path / "a.tar"
    platform_archive(layout, desc, normalized("crossplan/x:dev"), archive)
    with tarfile.open(archive) as tf:
        names = tf.getnames()
        index = json.loads(tf.extractfile("index.json").read())  # type: ignore[union-attr]
        manifest = json.loads(tf.extractfile(  # type: ignore[union-attr]
            "blobs/sha256/" + desc["digest"].split(":")[1]).read())
    [entry] = index["manifests"]
    assert entry["digest"] == desc["digest"]
    assert entry["platform"]["architecture"] == "arm64"
    assert entry["annotations"] == {CONTAINERD_NAME: "docker.io/crossplan/x:dev",
                                    "org.opencontainers.image.ref.name": "dev"}
    want = {"oci-layout", "index.json", *(
        "blobs/sha256/" + d.split(":")[1] for d in (
            desc["digest"], manifest["config"]["digest"], manifest["layers"][0]["digest"]))}
    assert set(names) == want  # the amd64 blobs stay out


class FakeStore:
    def __init__(self, root: Path, layout: Path | None, meta: dict[str, Any] | None) -> None:
        self.root, self.layout, self.meta = root, layout, meta
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    def materialize(self, entry: object, dest: Path) -> None:
        if self.layout is not None:
            shutil.copytree(self.layout, dest / "oci")
        if self.meta is not None:
            (dest / "buildx.json").write_text(json.dumps(self.meta))


class FakeEngine:
    def __init__(self) -> None:
        self.loaded: list[dict[str, Any]] = []

    def load(self, archive: Path) -> list[str]:
        with tarfile.open(archive) as tf:
            self.loaded.append(json.loads(tf.extractfile("index.json").read()))  # type: ignore[union-attr]
        return []

    def image_id(self, ref: str) -> str | None:
        return "sha256:id" if self.loaded else None


def test_load_platform(tmp_path: Path) -> None:
    layout = tmp_path / "oci"
    make_layout(layout, ["amd64", "arm64"])
    engine = FakeEngine()
    store = FakeStore(tmp_path / "store", layout, {"platforms": ["linux/amd64"]})
    got = load_platform(store, object(), engine, step="image",  # type: ignore[arg-type]
                        platform=Platform.parse("arm64"), tag="localhost:5000/d/h:1")
    assert got.name == "localhost:5000/d/h:1" and got.image_id == "sha256:id"
    assert got.as_json()["platform"] == "linux/arm64"
    [index] = engine.loaded
    assert index["manifests"][0]["digest"] == got.manifest
    assert list((tmp_path / "store" / "tmp").iterdir()) == []  # nothing left behind


def test_load_platform_not_built(tmp_path: Path) -> None:
    layout = tmp_path / "oci"
    make_layout(layout, ["amd64"])
    store = FakeStore(tmp_path / "store", layout, None)
    with pytest.raises(RecipeError, match="does not build linux/arm64") as info:
        load_platform(store, object(), FakeEngine(), step="image",  # type: ignore[arg-type]
                      platform=Platform.parse("arm64"), tag="x")
    assert info.value.hint == "its platforms: linux/amd64"


def test_load_platform_deferred_buildx(tmp_path: Path) -> None:
    store = FakeStore(tmp_path / "store", None, {"deferred": {
        "message": "the docker driver cannot export a multi-platform image", "hint": "h"}})
    engine = FakeEngine()
    with pytest.raises(EnvironmentProblem, match="nothing to load"):
        load_platform(store, object(), engine, step="image",  # type: ignore[arg-type]
                      platform=Platform.parse("amd64"), tag="x")
    assert engine.loaded == []
