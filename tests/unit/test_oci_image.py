"""Config, manifest and index documents: structure, canonical JSON, determinism, bases."""

from __future__ import annotations

import json
from typing import Any

import pytest

from crossplan.backends.oci import (
    BaseImage,
    BuiltIndex,
    ImageSpec,
    LayerEntry,
    LayerSpec,
    build_index,
    build_layer,
    canonical_json,
    validate_index,
)
from crossplan.errors import RecipeError
from crossplan.platforms import Platform

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")
ARMV7 = Platform("linux", "arm", "v7")
EPOCH = 1_700_000_000


def _spec(platform: Platform, **kw: Any) -> ImageSpec:
    binary = LayerEntry("/usr/local/bin/hello", data=f"bin for {platform}".encode(), mode=0o755)
    defaults: dict[str, Any] = {
        "layers": [LayerSpec((binary,), "crossplan step 'build' (go build)")],
        "entrypoint": ["/usr/local/bin/hello"],
        "cmd": ["--greet"],
        "env": {"PATH": "/usr/local/bin:/usr/bin", "GREETING": "hi"},
        "workdir": "/work",
        "user": "1000:1000",
        "labels": {"org.example.team": "infra"},
        "expose": [8080, "53/udp"],
        "created": EPOCH,
    }
    return ImageSpec(**{**defaults, **kw})


def _build(*platforms: Platform, **kw: Any) -> BuiltIndex:
    return build_index(
        {p: _spec(p) for p in platforms},
        revision="abc123",
        source="https://example.com/repo",
        **kw,
    )


def _json(data: bytes) -> dict[str, Any]:
    doc = json.loads(data)
    assert canonical_json(doc) == data
    return doc  # type: ignore[no-any-return]


def test_index_structure() -> None:
    built = _build(AMD64, ARMV7)
    index = _json(built.index)
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert index["annotations"] == {
        "org.opencontainers.image.created": "2023-11-14T22:13:20Z",
        "org.opencontainers.image.revision": "abc123",
        "org.opencontainers.image.source": "https://example.com/repo",
    }
    platforms = [m["platform"] for m in index["manifests"]]
    assert platforms == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm", "os": "linux", "variant": "v7"},
    ]
    for m in index["manifests"]:
        assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert [m["digest"] for m in index["manifests"]] == list(built.manifests.values())
    assert validate_index(built) == []


def test_manifest_and_config_structure() -> None:
    built = _build(ARMV7)
    image = built.images[ARMV7]
    manifest = _json(image.manifest)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+gzip"
    ]
    assert "annotations" not in manifest  # scratch: no base annotations
    config = _json(image.config)
    assert (config["os"], config["architecture"], config["variant"]) == ("linux", "arm", "v7")
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert config["config"] == {
        "Entrypoint": ["/usr/local/bin/hello"],
        "Cmd": ["--greet"],
        "Env": ["PATH=/usr/local/bin:/usr/bin", "GREETING=hi"],
        "WorkingDir": "/work",
        "User": "1000:1000",
        "Labels": {"org.example.team": "infra"},
        "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
    }
    layer = build_layer(_spec(ARMV7).layers[0].entries, mtime=EPOCH)
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer.diff_id]}
    assert config["history"] == [
        {"created": "2023-11-14T22:13:20Z", "created_by": "crossplan step 'build' (go build)"}
    ]


def test_deterministic_and_order_independent() -> None:
    a = _build(AMD64, ARM64)
    b = build_index(
        {ARM64: _spec(ARM64), AMD64: _spec(AMD64)},
        revision="abc123",
        source="https://example.com/repo",
    )
    assert a.digest == b.digest and a.index == b.index
    assert a.manifests == b.manifests
    c = build_index(
        {AMD64: _spec(AMD64), ARM64: _spec(ARM64, env={"GREETING": "hello"})},
        revision="abc123",
        source="https://example.com/repo",
    )
    assert c.manifests[AMD64] == a.manifests[AMD64]
    assert c.manifests[ARM64] != a.manifests[ARM64]
    assert c.digest != a.digest


def test_shared_layers_are_built_once_and_deduplicated() -> None:
    shared = LayerSpec((LayerEntry("/etc/motd", data=b"hi"),), "step 'motd'")
    built = build_index({p: ImageSpec(layers=[shared], created=1) for p in (AMD64, ARM64)})
    layers = {d.digest for img in built.images.values() for d in img.layers}
    assert len(layers) == 1
    assert len(built.blobs) == 3  # one layer, two configs


def test_empty_layer_spec_is_history_only() -> None:
    spec = ImageSpec(layers=[LayerSpec((), "step 'noop'")], created=0)
    built = build_index({AMD64: spec})
    config = json.loads(built.images[AMD64].config)
    assert config["rootfs"]["diff_ids"] == []
    assert config["history"][0]["empty_layer"] is True
    assert validate_index(built) == []


def _base(platform: Platform) -> BaseImage:
    layer = build_layer([LayerEntry("/bin/sh", data=b"busybox", mode=0o755)], mtime=0)
    config = {
        "architecture": platform.arch,
        "os": platform.os,
        "config": {"Env": ["PATH=/bin", "HOME=/root"], "Cmd": ["/bin/sh"], "Labels": {"a": "1"}},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created_by": "base layer"}],
        "container_config": {"Hostname": "builder"},
    }
    return BaseImage(config, (layer.as_blob(),), "sha256:" + "b" * 64, "base:1", "base@sha256:x")


def test_base_layers_come_first_and_config_merges() -> None:
    base = _base(AMD64)
    spec = ImageSpec(
        base=base,
        layers=_spec(AMD64).layers,
        env={"PATH": "/usr/local/bin:/bin"},
        entrypoint=["/app"],
        labels={"b": "2"},
        created=EPOCH,
    )
    built = build_index({AMD64: spec})
    assert validate_index(built) == []
    image = built.images[AMD64]
    assert image.layers[0].digest == base.layers[0].digest
    assert len(image.layers) == 2
    config = json.loads(image.config)
    assert config["config"]["Env"] == ["PATH=/usr/local/bin:/bin", "HOME=/root"]
    assert config["config"]["Entrypoint"] == ["/app"]
    assert "Cmd" not in config["config"]  # a new entrypoint resets the base's Cmd
    assert config["config"]["Labels"] == {"a": "1", "b": "2"}
    assert "container_config" not in config
    assert config["history"][0] == {"created_by": "base layer"}
    manifest = json.loads(image.manifest)
    assert manifest["annotations"]["org.opencontainers.image.base.digest"] == base.digest


def test_base_with_inconsistent_rootfs_is_rejected() -> None:
    base = _base(AMD64)
    broken = BaseImage({**base.config, "rootfs": {"diff_ids": []}}, base.layers, base.digest)
    with pytest.raises(RecipeError, match="diff_ids"):
        build_index({AMD64: ImageSpec(base=broken)})


def test_no_platforms_is_an_error() -> None:
    with pytest.raises(RecipeError):
        build_index({})
