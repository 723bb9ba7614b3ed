"""One conformance suite for both image backends.

The same two-platform image (a ``#!/bin/sh`` script per platform, printing the arch the
shell step baked in, on the local multi-platform busybox base) is built through crossplan's
Python API with ``backend = "oci"`` and with ``backend = "buildx"`` (``compile = "host"``),
written as an OCI layout (``output="oci:DIR"``) and pushed (``push=True``) to
``localhost:5000/conformance/<backend>:1``. Both copies are checked the same way: exactly
the requested platforms, configs matching them, diff_ids matching layers, every blob
verified, the shared ``validate_index``, ``docker run`` on each platform (arm64 under QEMU),
and the same index digest from empty stores.

The oci backend reads bases from registries and OCI layouts, not from the engine's image
store, so it gets ``crossplan-ci/busybox:latest`` through a registry copy pushed here
(same index digest as the engine's image, asserted); buildx uses the engine's image.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from buildx_env import BASE_IMAGE, REGISTRY, docker_run, require_engine, sh
from testkit import SCRUBBED

import crossplan
from crossplan.api import RunOptions
from crossplan.backends.oci import (
    Blob,
    BuiltImage,
    BuiltIndex,
    Descriptor,
    RegistryClient,
    pull_base,
    validate_index,
)
from crossplan.backends.oci.mediatypes import OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST
from crossplan.backends.oci.pull import RegistryBlobs
from crossplan.backends.oci.reference import Reference
from crossplan.backends.oci.reload import read_layout_index
from crossplan.platforms import Platform

BACKENDS = ("oci", "buildx")
PLATFORMS = ("linux/amd64", "linux/arm64")
BASE_COPY = f"{REGISTRY}/conformance/busybox:latest"  # the oci backend's view of BASE_IMAGE
# Unique per session: buildkit cache records of this run's COPY are found by this name.
STEP = f"hello-{uuid.uuid4().hex[:8]}"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(600),
    pytest.mark.parametrize("backend", BACKENDS, scope="module"),
]

# buildx with SOURCE_DATE_EPOCH as a build arg fixes config/history times and the mtimes of
# the copied files (crossplan stamps the context), but the parent directories COPY creates
# (usr/, usr/local/ for dest /usr/local/bin/) get the builder's wall clock unless the
# exporter is given `rewrite-timestamp=true` (buildkit >= 0.13), which crossplan's buildx
# backend (crossplan/backends/buildx/build.py) does not pass. A second build that really
# runs the COPY again therefore differs; with a warm buildkit cache it is reused and equal.
BUILDX_COLD_NOT_REPRODUCIBLE = (
    "buildx backend: dirs created by COPY get the build's wall-clock mtime; crossplan does "
    "not pass rewrite-timestamp=true to the buildx exporter"
)


@dataclass(frozen=True)
class Built:
    backend: str
    recipe: crossplan.Recipe
    env: dict[str, str]
    image: crossplan.ImageResult
    layout: Path
    ref: str


def recipe_for(root: Path, backend: str) -> crossplan.Recipe:
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "greeting.txt").write_text("hello from\n")
    script = ('printf "#!/bin/sh\\necho %s %s\\n" "$(cat greeting.txt)" "$TARGETARCH" > hello'
              " && chmod 755 hello")
    return crossplan.recipe_from_dict({
        "project": {"name": "conformance", "platforms": list(PLATFORMS)},
        "steps": {
            STEP: {
                "kind": "shell", "src": "src/", "command": ["sh", "-c", script],
                "outputs": ["hello"],
            },
            "image": {
                "kind": "image", "backend": backend,
                "base": BASE_IMAGE if backend == "buildx" else BASE_COPY,
                "copy": [{"from": STEP, "dest": "/usr/local/bin/"}],
                "cmd": ["/usr/local/bin/hello"],
                "tags": [f"{REGISTRY}/conformance/{backend}:1"],
            },
        },
        "buildx": {"compile": "host"},
    }, root=root)


def build(b: Built | tuple[crossplan.Recipe, dict[str, str]], cache_dir: Path, *,
          layout: Path, push: bool = False) -> crossplan.ImageResult:
    """Plan and run from the (empty) store ``cache_dir``: the image step's result."""
    recipe, env = (b.recipe, b.env) if isinstance(b, Built) else b
    assert not cache_dir.exists()
    p = crossplan.plan(recipe, cache_dir=cache_dir, environ=env)
    result = crossplan.run(p, RunOptions(cache_dir=cache_dir, output=f"oci:{layout}", push=push,
                                         environ=env))
    assert result.ok
    assert {s.status for s in result.steps} == {"built"}
    return result.image("image")


@pytest.fixture(scope="module")
def base_copy() -> str:
    """``BASE_IMAGE`` pushed to the registry, unchanged: its index digest."""
    require_engine()
    engine_digest = sh("docker", "image", "inspect", "--format", "{{.Id}}", BASE_IMAGE).stdout
    sh("docker", "tag", BASE_IMAGE, BASE_COPY)
    try:
        push_with_retry(BASE_COPY)
    finally:
        sh("docker", "image", "rm", BASE_COPY, check=False)  # the tag only
    digest = registry_digest(BASE_COPY)
    assert digest == engine_digest.strip(), "the registry copy of the base is not the same image"
    return digest


@pytest.fixture(scope="module")
def built(backend: str, base_copy: str, tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp(f"conformance-{backend}")
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["XDG_CACHE_HOME"] = str(tmp / "xdg")
    recipe = recipe_for(tmp / "proj", backend)
    image = build((recipe, env), tmp / "cache-a", layout=tmp / "layout-a", push=True)
    ref = f"{REGISTRY}/conformance/{backend}:1"
    assert image.pushed == (ref,)
    assert not any("differs" in n for n in image.notes), image.notes  # buildx: push == store
    return Built(backend, recipe, env, image, tmp / "layout-a", ref)


# -- reading an index back, from a layout or the registry ------------------------------


@dataclass(frozen=True)
class Source:
    """Raw, unverified bytes of manifests and blobs by digest (the checks verify them)."""

    name: str
    manifest: Callable[[str], bytes]
    blob: Callable[[str], bytes]


def layout_source(layout: Path) -> Source:
    def read(digest: str) -> bytes:
        return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()

    return Source(f"oci:{layout}", read, read)


def registry_source(ref: str) -> Source:
    repo = Reference.parse(ref).repository

    def get(kind: str, digest: str) -> bytes:
        accept = {"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"}
        resp = httpx.get(f"http://{REGISTRY}/v2/{repo}/{kind}/{digest}", headers=accept,
                         timeout=30)
        resp.raise_for_status()
        return resp.content

    return Source(ref, lambda d: get("manifests", d), lambda d: get("blobs", d))


def push_with_retry(ref: str, attempts: int = 3) -> None:
    """``docker push`` of a multi-platform image, retried only on the registry's 500 for the
    tag: the engine PUTs each platform's manifest and then the index under the same tag while
    it HEADs that tag, and distribution 2.8's filesystem driver truncates and rewrites the tag's
    link file in place, so a concurrent HEAD can read it half-written ("invalid checksum digest
    format", 500). Seen once in CI (the push of an unchanged image whose tag existed); any
    other failure fails at once."""
    for attempt in range(1, attempts + 1):
        proc = sh("docker", "push", ref, check=False)
        if proc.returncode == 0:
            return
        transient = "500 Internal Server Error" in proc.stdout + proc.stderr
        if not transient or attempt == attempts:
            pytest.fail(f"`docker push {ref}` exited {proc.returncode} (attempt {attempt}):\n"
                        f"{proc.stdout}\n{proc.stderr}")
        time.sleep(1.0)


def registry_digest(ref: str) -> str:
    parsed = Reference.parse(ref)
    resp = httpx.get(f"http://{parsed.registry}/v2/{parsed.repository}/manifests/{parsed.ref}",
                     headers={"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"}, timeout=30)
    resp.raise_for_status()
    return "sha256:" + hashlib.sha256(resp.content).hexdigest()


def registry_index(ref: str) -> BuiltIndex:
    """A pushed index as a BuiltIndex (like ``read_layout_index`` for a layout), with blobs
    read lazily from the registry, for ``validate_index``."""
    parsed = Reference.parse(ref)
    source = RegistryBlobs(RegistryClient(parsed.registry, insecure=True), parsed.repository)
    index = source.read_manifest(registry_digest(ref))
    images: dict[Platform, BuiltImage] = {}
    blobs: dict[str, Blob] = {}
    for entry in json.loads(index)["manifests"]:
        desc = Descriptor.from_json(entry)
        assert desc.platform is not None
        manifest = source.read_manifest(desc.digest)
        doc = json.loads(manifest)
        config_desc = Descriptor.from_json(doc["config"])
        layers = tuple(Descriptor.from_json(d) for d in doc["layers"])
        images[desc.platform] = BuiltImage(desc.platform, manifest,
                                           source.read_blob(config_desc.digest), layers)
        blobs.update({d.digest: Blob(d, source) for d in (config_desc, *layers)})
    return BuiltIndex(index, images, blobs)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_index(src: Source, index_digest: str) -> dict[str, dict[str, Any]]:
    """Exactly PLATFORMS, each config matching its platform, every digest verified and every
    diff_id the digest of its uncompressed layer; returns platform -> config."""
    index_bytes = src.manifest(index_digest)
    assert sha256(index_bytes) == index_digest, src.name
    index = json.loads(index_bytes)
    assert index["mediaType"] == OCI_INDEX
    entries = index["manifests"]
    listed = ["/".join(filter(None, (m["platform"]["os"], m["platform"]["architecture"],
                                     m["platform"].get("variant")))) for m in entries]
    assert sorted(listed) == sorted(PLATFORMS) and len(listed) == len(PLATFORMS), listed
    configs: dict[str, dict[str, Any]] = {}
    for entry, platform in zip(entries, listed, strict=True):
        where = f"{src.name} {platform}"
        manifest_bytes = src.manifest(entry["digest"])
        assert (sha256(manifest_bytes), len(manifest_bytes)) == (entry["digest"], entry["size"])
        manifest = json.loads(manifest_bytes)
        assert manifest["mediaType"] == entry["mediaType"] == OCI_MANIFEST, where
        config_bytes = src.blob(manifest["config"]["digest"])
        assert sha256(config_bytes) == manifest["config"]["digest"], where
        assert len(config_bytes) == manifest["config"]["size"], where
        config = json.loads(config_bytes)
        os_, arch = platform.split("/")
        assert (config["os"], config["architecture"]) == (os_, arch), where
        assert config.get("variant") is None and entry["platform"].get("variant") is None, where
        diff_ids = config["rootfs"]["diff_ids"]
        assert config["rootfs"]["type"] == "layers"
        assert len(diff_ids) == len(manifest["layers"]) >= 3, where  # base (2) + ours
        for layer, diff_id in zip(manifest["layers"], diff_ids, strict=True):
            data = src.blob(layer["digest"])
            assert (sha256(data), len(data)) == (layer["digest"], layer["size"]), where
            assert layer["mediaType"] == OCI_LAYER_GZIP, where
            assert sha256(gzip.decompress(data)) == diff_id, f"{where}: {layer['digest']}"
        configs[platform] = config
    return configs


def validation_problems(built: BuiltIndex, backend: str) -> list[str]:
    """``validate_index`` with every layer read. Its one crossplan-only rule, canonical JSON
    (sorted keys, no whitespace: how the oci backend writes documents), cannot hold for
    buildx: buildkit writes indented manifests with Go field order, and re-encoding them
    would change the digests buildx pushed. The OCI spec hashes bytes as written and does
    not ask for canonical JSON, so only for buildx that rule is set aside (and asserted
    to be the only thing set aside)."""
    problems = validate_index(built, read_layers=True)
    if backend == "buildx":
        return [p for p in problems if not p.endswith("JSON is not canonical")]
    return problems


# -- the suite -------------------------------------------------------------------------


def test_layout_index_platforms_configs_and_layers(backend: str, built: Built) -> None:
    layout = built.layout
    every = json.loads((layout / "index.json").read_text())["manifests"]
    # attestations (SBOM, provenance) are listed too, as artifacts about each platform
    top = [d for d in every if "artifactType" not in d]
    assert {d["annotations"]["dev.crossplan.subject"] for d in every if "artifactType" in d} \
        == set(built.image.manifests.values())
    ref = "org.opencontainers.image.ref.name"
    # the image index under the tag's name (oci:DIR:1 addresses it), and each platform's
    # manifest under 1-<arch> (oci:DIR:1-arm64)
    by_ref = {d.get("annotations", {}).get(ref): (d["mediaType"], d["digest"]) for d in top}
    assert len(by_ref) == len(top) == 1 + len(PLATFORMS)
    assert by_ref["1"] == (OCI_INDEX, built.image.index_digest)
    assert {r: dg for r, (mt, dg) in by_ref.items() if r != "1"} == {
        f"1-{p.split('/')[1]}": built.image.manifests[p] for p in PLATFORMS}
    configs = check_index(layout_source(layout), built.image.index_digest)
    assert {p: c["architecture"] for p, c in configs.items()} == {
        "linux/amd64": "amd64", "linux/arm64": "arm64"}
    for path in (layout / "blobs" / "sha256").iterdir():  # every blob, referenced or not
        assert sha256(path.read_bytes()) == f"sha256:{path.name}", path
    index = read_layout_index(layout)
    assert index.digest == built.image.index_digest
    assert {str(p): d for p, d in index.manifests.items()} == built.image.manifests
    assert validation_problems(index, backend) == []


def test_pushed_index_is_the_stored_one(backend: str, built: Built) -> None:
    assert registry_digest(built.ref) == built.image.index_digest
    check_index(registry_source(built.ref), built.image.index_digest)
    index = registry_index(built.ref)
    assert index.index == read_layout_index(built.layout).index
    assert validation_problems(index, backend) == []


def test_validate_index_relaxation_is_only_canonical_json(backend: str, built: Built) -> None:
    problems = validate_index(read_layout_index(built.layout))
    if backend == "oci":
        assert problems == []
    else:  # index, 2 manifests, 2 configs: buildkit's encoding, nothing else
        assert sorted(problems) == sorted(
            ["index: JSON is not canonical"]
            + [f"{p}{what}: JSON is not canonical" for p in PLATFORMS for what in ("", " config")])


def test_same_base_layers_under_both_backends(backend: str, built: Built, base_copy: str) -> None:
    """Both backends put the base's own layers, unchanged, under the copied one."""
    bases = pull_base(f"{BASE_COPY.rsplit(':', 1)[0]}@{base_copy}",
                      [Platform.parse(p) for p in PLATFORMS], insecure=True)
    index = read_layout_index(built.layout)
    for platform, base in bases.items():
        layers = [d.digest for d in index.images[platform].layers]
        assert layers[:-1] == [b.digest for b in base.layers], platform
        config = json.loads(index.images[platform].config)
        assert config["config"]["Cmd"] == ["/usr/local/bin/hello"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_runs_on_each_platform(backend: str, built: Built, platform: str) -> None:
    sh("docker", "image", "rm", "-f", built.ref, check=False)  # run what the registry holds
    arch = platform.split("/")[1]
    assert docker_run(built.ref, platform) == f"hello from {arch}\n"
    sh("docker", "image", "rm", "-f", built.ref, check=False)


def test_reproducible_from_an_empty_store(backend: str, built: Built, tmp_path: Path) -> None:
    """A second, empty crossplan store; for buildx, buildkit's cache is still warm."""
    again = build(built, tmp_path / "cache-b", layout=tmp_path / "layout-b")
    assert again.index_digest == built.image.index_digest
    assert again.manifests == built.image.manifests


def test_reproducible_with_a_cold_builder(backend: str, built: Built, tmp_path: Path,
                                          request: pytest.FixtureRequest) -> None:
    """A third empty store, and nothing of the first build left in the builder either: the
    oci backend has no builder cache; for buildx, this session's COPY cache records are
    pruned (by id, leaving everyone else's cache alone), so buildkit runs the COPY again."""
    if backend == "buildx":
        assert prune_copy_records(), f"no buildkit cache record for step {STEP}"
        request.applymarker(pytest.mark.xfail(strict=True, reason=BUILDX_COLD_NOT_REPRODUCIBLE))
    again = build(built, tmp_path / "cache-c", layout=tmp_path / "layout-c")
    if again.index_digest != built.image.index_digest:
        pytest.fail(f"{backend}: index {again.index_digest} != {built.image.index_digest}; "
                    "top layer entries with different mtimes: "
                    f"{mtime_diff(built.layout, tmp_path / 'layout-c')}")


def prune_copy_records() -> list[str]:
    """Remove the buildkit cache records of this session's ``COPY out/<arch>/STEP/``."""
    ids = []
    for block in sh("docker", "buildx", "du", "--verbose").stdout.split("\n\n"):
        fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
        if f"/{STEP}/ " in fields.get("Description", "") and "ID" in fields:
            ids.append(fields["ID"].strip())
    for record in ids:
        sh("docker", "buildx", "prune", "-af", "--filter", f"id={record}")
    return ids


def mtime_diff(a: Path, b: Path) -> list[str]:
    """``path: mtime_a != mtime_b`` for the top (copied) layer of each platform."""

    def top_layers(layout: Path) -> dict[Platform, dict[str, int]]:
        index = read_layout_index(layout)
        out = {}
        for platform, image in index.images.items():
            data = gzip.decompress(index.blobs[image.layers[-1].digest].read())
            with tarfile.open(fileobj=io.BytesIO(data)) as tf:
                out[platform] = {m.name: int(m.mtime) for m in tf.getmembers()}
        return out

    first, second = top_layers(a), top_layers(b)
    return [f"{p} {name}: {t} != {second[p].get(name)}" for p in first
            for name, t in first[p].items() if second[p].get(name) != t]
