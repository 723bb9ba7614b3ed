"""Referrer artifacts and their discovery: manifest shape (subject, artifactType, empty
config), the referrers tag index (other tools' entries kept, ours replaced), the cosign tag
manifest (layers appended once), and a layout's index.json gaining artifacts while the
image index itself is untouched."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from crossplan.attest.referrers import (
    KIND,
    artifact,
    cosign_manifest,
    merged_index,
    referrers_tag,
    write_to_layout,
)

SUBJECT = ("sha256:" + "a" * 64, 400)


def _sbom(text: bytes = b'{"spdxVersion":"SPDX-2.3"}'):  # type: ignore[no-untyped-def]
    return artifact("sbom", "application/spdx+json", SUBJECT,
                    [("application/spdx+json", text, {})], created=0)


def test_artifact_manifest_names_its_subject() -> None:
    a = _sbom()
    doc = json.loads(a.manifest)
    assert doc["subject"] == {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                              "digest": SUBJECT[0], "size": 400}
    assert doc["artifactType"] == "application/spdx+json"
    assert doc["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert a.blobs[doc["config"]["digest"]] == b"{}"
    assert a.digest == "sha256:" + hashlib.sha256(a.manifest).hexdigest()
    assert a.descriptor()["annotations"][KIND] == "sbom"
    assert referrers_tag(SUBJECT[0]) == "sha256-" + "a" * 64


def test_referrers_index_keeps_others_and_replaces_ours() -> None:
    foreign = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
               "digest": "sha256:" + "f" * 64, "size": 1, "artifactType": "x/y"}
    old = _sbom(b'{"old":1}')
    first = merged_index(json.dumps({"manifests": [foreign]}).encode(), [old])
    new = _sbom(b'{"new":1}')
    second = json.loads(merged_index(first, [new]))
    digests = [m["digest"] for m in second["manifests"]]
    assert digests == [foreign["digest"], new.digest]
    assert merged_index(merged_index(None, [new]), [new]) == merged_index(None, [new])


def test_cosign_tag_appends_new_layers_once() -> None:
    layer = ("application/vnd.dev.cosign.simplesigning.v1+json", b"payload",
             {"dev.cosignproject.cosign/signature": "c2ln"})
    first = cosign_manifest([layer], None)
    again = cosign_manifest([layer], first.manifest)
    assert json.loads(again.manifest)["layers"] == json.loads(first.manifest)["layers"]
    other = (layer[0], b"other", {"dev.cosignproject.cosign/signature": "b3RoZXI="})
    both = json.loads(cosign_manifest([other], first.manifest).manifest)
    assert len(both["layers"]) == 2


def test_layout_gains_artifacts_and_keeps_its_image_index(tmp_path: Path) -> None:
    (tmp_path / "blobs" / "sha256").mkdir(parents=True)
    image_entry = {"mediaType": "application/vnd.oci.image.index.v1+json",
                   "digest": "sha256:" + "b" * 64, "size": 10,
                   "annotations": {"org.opencontainers.image.ref.name": "1.0"}}
    (tmp_path / "index.json").write_text(json.dumps({"schemaVersion": 2,
                                                     "manifests": [image_entry]}))
    old = _sbom(b'{"old":1}')
    write_to_layout(tmp_path, [old])
    new = _sbom(b'{"new":1}')
    write_to_layout(tmp_path, [new])
    entries = json.loads((tmp_path / "index.json").read_text())["manifests"]
    assert entries[0] == image_entry
    assert [e["digest"] for e in entries[1:]] == [new.digest]
    assert (tmp_path / "blobs" / "sha256" / new.digest[7:]).read_bytes() == new.manifest
