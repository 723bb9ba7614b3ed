"""OCI layout directories and archives: written atomically, read back as base images."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from crossplan.backends.oci import (
    Blob,
    BuiltIndex,
    ImageSpec,
    LayerEntry,
    LayerSpec,
    build_index,
    export,
    parse_layout_ref,
    read_layout_base,
    validate_index,
    write_archive,
    write_layout,
)
from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.platforms import Platform

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")


def _built(text: str = "v1") -> BuiltIndex:
    return build_index(
        {
            p: ImageSpec(
                layers=[LayerSpec((LayerEntry("/hello", data=f"{text} {p}".encode()),), "s")],
                cmd=["/hello"],
                created=5,
            )
            for p in (AMD64, ARM64)
        }
    )


def test_layout_files(tmp_path: Path) -> None:
    built = _built()
    out = write_layout(built, tmp_path / "img", ref_name="1.0")
    assert json.loads((out / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    top = json.loads((out / "index.json").read_text())
    assert top["manifests"] == [
        {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": built.digest,
            "size": len(built.index),
            "annotations": {"org.opencontainers.image.ref.name": "1.0"},
        }
    ]
    names = {p.name for p in (out / "blobs" / "sha256").iterdir()}
    expected = {d.split(":")[1] for d in [*built.blobs, *built.documents()]}
    assert names == expected
    assert [p.name for p in tmp_path.iterdir()] == ["img"]  # no temp dirs left behind


def test_layout_replaced_atomically(tmp_path: Path) -> None:
    target = tmp_path / "img"
    write_layout(_built("v1"), target, ref_name="t")
    inode = os.stat(target).st_ino
    second = _built("v2")
    write_layout(second, target, ref_name="t")
    assert os.stat(target).st_ino != inode
    assert json.loads((target / "index.json").read_text())["manifests"][0]["digest"] == (
        second.digest
    )
    assert [p.name for p in tmp_path.iterdir()] == ["img"]


def test_failed_write_leaves_previous_layout(tmp_path: Path) -> None:
    target = tmp_path / "img"
    first = _built("v1")
    write_layout(first, target)
    v2 = _built("v2")
    digest, blob = next(iter(v2.blobs.items()))
    broken = BuiltIndex(
        v2.index, v2.images, {**v2.blobs, digest: Blob(blob.descriptor, _Exploding())}
    )
    with pytest.raises(RuntimeError):
        write_layout(broken, target)
    assert json.loads((target / "index.json").read_text())["manifests"][0]["digest"] == (
        first.digest
    )
    assert [p.name for p in tmp_path.iterdir()] == ["img"]


class _Exploding:
    def read_blob(self, digest: str) -> bytes:
        raise RuntimeError("disk on fire")


def test_archive_is_deterministic(tmp_path: Path) -> None:
    a = write_archive(_built(), tmp_path / "a.tar", ref_name="1")
    b = write_archive(_built(), tmp_path / "b.tar", ref_name="1")
    assert a.read_bytes() == b.read_bytes()
    with tarfile.open(a) as tar:
        names = tar.getnames()
        assert names[:2] == ["blobs", "blobs/sha256"]
        assert {"index.json", "oci-layout"} <= set(names)
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())


@pytest.mark.parametrize("kind", ["oci", "oci-archive"])
def test_read_back_as_base(tmp_path: Path, kind: str) -> None:
    built = _built()
    path = tmp_path / ("img" if kind == "oci" else "img.tar")
    export(built, f"{kind}:{path}:1.0", arch_tags=True)
    bases = read_layout_base(f"{kind}:{path}:1.0", [ARM64])
    base = bases[ARM64]
    assert base.digest == built.manifests[ARM64]
    assert base.pinned == f"{kind}:{path}@{built.digest}"
    assert [b.digest for b in base.layers] == [d.digest for d in built.images[ARM64].layers]
    assert base.layers[0].read()  # lazily read and verified
    child = build_index(
        {ARM64: ImageSpec(base=base, layers=[LayerSpec((LayerEntry("/x", data=b"x"),), "x")])}
    )
    assert validate_index(child) == []
    assert len(child.images[ARM64].layers) == 2
    per_arch = read_layout_base(f"{kind}:{path}:1.0-arm64", [ARM64])[ARM64]
    assert per_arch.digest == base.digest


def test_read_errors(tmp_path: Path) -> None:
    built = _built()
    write_layout(built, tmp_path / "img", ref_name="1.0", platform_refs={AMD64: "amd"})
    with pytest.raises(RecipeError, match="expected one image") as err:
        read_layout_base(f"oci:{tmp_path / 'img'}", [AMD64])
    assert "1.0" in str(err.value) and "amd" in str(err.value)
    with pytest.raises(RecipeError, match="has no linux/arm/v7"):
        read_layout_base(f"oci:{tmp_path / 'img'}:1.0", [Platform("linux", "arm", "v7")])
    with pytest.raises(EnvironmentProblem):
        read_layout_base(f"oci:{tmp_path / 'missing'}", [AMD64])
    blob = tmp_path / "img" / "blobs" / "sha256" / built.manifests[AMD64].split(":")[1]
    blob.write_bytes(blob.read_bytes() + b" ")
    with pytest.raises(EnvironmentProblem, match="expected sha256"):
        read_layout_base(f"oci:{tmp_path / 'img'}:1.0", [AMD64])


def test_parse_layout_ref() -> None:
    ref = parse_layout_ref("oci:out/dir:1.0")
    assert ref is not None and (ref.kind, str(ref.path), ref.ref) == ("oci", "out/dir", "1.0")
    assert parse_layout_ref("localhost:5000/x:1") is None
    with pytest.raises(RecipeError):
        parse_layout_ref("oci-archive:")
