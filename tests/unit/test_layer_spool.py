"""Large layers and layout blobs never whole in memory: a layer whose blob outgrows SPILL is
compressed into a file (the same bytes as held in memory), written into a work dir's layout
by a hard link and into an exported one by a copy; a layout's blobs are handed over as
files checked against their digests (a directory's own, an archive's spooled)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from crossplan.backends.oci import ImageSpec, LayerEntry, LayerSpec, build_index, write_layout
from crossplan.backends.oci import layers as layers_mod
from crossplan.backends.oci.descriptor import DigestMismatch
from crossplan.backends.oci.layers import build_layer
from crossplan.backends.oci.layout import LayoutRef, _LayoutBlobs, write_archive
from crossplan.errors import EnvironmentProblem
from crossplan.platforms import Platform

AMD64 = Platform.parse("linux/amd64")
DATA = os.urandom(300_000)  # incompressible: the blob is about as large


@pytest.fixture
def small_spill(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layers_mod, "SPILL", 64 << 10)


def _entries() -> tuple[LayerEntry, ...]:
    return (LayerEntry("/data/big.bin", data=DATA),)


def test_a_large_layer_goes_to_a_file_with_the_bytes_it_would_have_in_memory(
    tmp_path: Path, small_spill: None,
) -> None:
    held = build_layer(_entries(), mtime=0)
    spooled = build_layer(_entries(), mtime=0, spool=tmp_path / "spool")
    assert held.path is None and len(held.blob) == held.size
    assert spooled.path is not None and spooled.blob == b""
    assert spooled.path.parent == tmp_path / "spool"
    assert spooled.path.stat().st_mode & 0o222 == 0
    assert (spooled.digest, spooled.diff_id, spooled.size) == (held.digest, held.diff_id,
                                                               held.size)
    assert spooled.path.read_bytes() == held.blob
    small = build_layer((LayerEntry("/a", data=b"a"),), mtime=0, spool=tmp_path / "s2")
    assert small.path is None and not (tmp_path / "s2").exists()  # held: no file made


def test_a_spooled_layer_is_linked_into_a_work_dir_and_copied_into_an_export(
    tmp_path: Path, small_spill: None,
) -> None:
    spec = ImageSpec(layers=[LayerSpec(_entries(), "big")], created=0)
    built = build_index({AMD64: spec}, spool=tmp_path / "spool")
    (spooled,) = (tmp_path / "spool").iterdir()  # (a temporary name: known by its bytes)
    digest = hashlib.sha256(spooled.read_bytes()).hexdigest()
    blob = Path("blobs/sha256") / digest
    write_layout(built, tmp_path / "work", sync=False)
    assert (tmp_path / "work" / blob).stat().st_ino == spooled.stat().st_ino
    write_layout(built, tmp_path / "export")
    assert (tmp_path / "export" / blob).stat().st_ino != spooled.stat().st_ino
    assert (tmp_path / "export" / blob).read_bytes() == spooled.read_bytes()
    write_archive(built, tmp_path / "image.tar")
    with _LayoutBlobs(LayoutRef("oci-archive", tmp_path / "image.tar")).blob_file(
            f"sha256:{digest}") as path:
        assert path.read_bytes() == spooled.read_bytes()


def test_a_layout_blob_is_handed_over_as_a_file_checked_against_its_digest(
    tmp_path: Path,
) -> None:
    spec = ImageSpec(layers=[LayerSpec(_entries(), "big")], created=0)
    write_layout(build_index({AMD64: spec}), tmp_path / "layout")
    source = _LayoutBlobs(LayoutRef("oci", tmp_path / "layout"))
    blob = max((tmp_path / "layout" / "blobs" / "sha256").iterdir(),
               key=lambda p: p.stat().st_size)
    with source.blob_file(f"sha256:{blob.name}") as path:
        assert path == blob  # the layout's own file, not a copy
    blob.write_bytes(b"rot")
    with pytest.raises(DigestMismatch), source.blob_file(f"sha256:{blob.name}"):
        pass
    with pytest.raises(EnvironmentProblem, match="cannot read"), \
            source.blob_file("sha256:" + "0" * 64):
        pass
