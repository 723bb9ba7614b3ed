"""Remote cache artifacts (tag, manifest, entry JSON checks) and ed25519 signing."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from crossplan.backends.oci.descriptor import sha256_digest
from crossplan.backends.oci.mediatypes import OCI_MANIFEST
from crossplan.cache.artifact import (
    ARTIFACT_TYPE,
    BLOB_TYPE,
    CONFIG_TYPE,
    BlobRef,
    InvalidArtifact,
    encode,
    parse_config,
    parse_manifest,
    tag_for,
)
from crossplan.cache.signing import (
    PublicKey,
    SigningKey,
    load_public_key,
    signed_message,
    write_keypair,
)
from crossplan.cache.store import Entry, OutputFile
from crossplan.errors import RecipeError
from crossplan.hashing import hash_bytes

KEY = "ab" * 32
DATA = {"bin/app": b"\x7fELF app", "bin/other": b"other", "log": b"log text"}


def _entry(files: list[OutputFile] | None = None) -> tuple[Entry, dict[str, BlobRef]]:
    blobs = {hash_bytes(d): BlobRef(hash_bytes(d), sha256_digest(d), len(d)) for d in DATA.values()}
    if files is None:
        files = [
            OutputFile("bin/app", hash_bytes(DATA["bin/app"]), 0o755, len(DATA["bin/app"])),
            OutputFile("bin/copy", hash_bytes(DATA["bin/app"]), 0o755, len(DATA["bin/app"])),
            OutputFile("bin/other", hash_bytes(DATA["bin/other"]), 0o644, len(DATA["bin/other"])),
        ]
    entry = Entry(KEY, "app@linux/arm64", tuple(files), hash_bytes(DATA["log"]), 1.5, 1e9, {})
    return entry, blobs


def test_tag_is_k_and_the_key_and_fits_the_tag_grammar() -> None:
    tag = tag_for(KEY)
    assert tag == f"k-{KEY}" and len(tag) <= 128
    with pytest.raises(ValueError):
        tag_for("not-a-key")


def test_manifest_is_an_oci_artifact_with_one_layer_per_distinct_blob() -> None:
    entry, blobs = _entry()
    art = encode(entry, blobs)
    doc = json.loads(art.manifest())
    assert doc["mediaType"] == OCI_MANIFEST and doc["artifactType"] == ARTIFACT_TYPE
    assert doc["config"] == {
        "mediaType": CONFIG_TYPE, "digest": sha256_digest(art.config), "size": len(art.config),
    }
    assert doc["annotations"]["dev.crossplan.key"] == KEY
    layers = doc["layers"]
    assert len(layers) == 3  # app (twice in the entry), other, log
    assert {la["mediaType"] for la in layers} == {BLOB_TYPE}
    by_b3 = {la["annotations"]["dev.crossplan.blake3"]: la for la in layers}
    for data in DATA.values():
        assert by_b3[hash_bytes(data)]["digest"] == sha256_digest(data)
        assert by_b3[hash_bytes(data)]["size"] == len(data)


def test_round_trip_gives_back_the_entry() -> None:
    entry, blobs = _entry()
    art = encode(entry, blobs)
    desc, sig = parse_manifest(KEY, art.manifest())
    assert desc.digest == art.config_digest and sig is None
    back = parse_config(KEY, art.config, sig)
    assert back.entry == entry
    assert set(back.blobs) == set(blobs.values())


def test_entry_json_for_another_key_is_refused() -> None:
    entry, blobs = _entry()
    art = encode(entry, blobs)
    with pytest.raises(InvalidArtifact, match="for key"):
        parse_config("cd" * 32, art.config, None)
    with pytest.raises(InvalidArtifact, match="for key"):
        parse_manifest("cd" * 32, art.manifest())


def test_a_plain_image_manifest_is_not_an_action() -> None:
    image = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "0" * 64,
        "size": 2}, "layers": []}
    with pytest.raises(InvalidArtifact, match="not a crossplan action"):
        parse_manifest(KEY, json.dumps(image).encode())
    with pytest.raises(InvalidArtifact, match="malformed"):
        parse_manifest(KEY, b"{not json")


def _tampered(change: dict[str, Any]) -> bytes:
    """The entry JSON with ``{"a|b|c": value}`` set (None deletes it)."""
    entry, blobs = _entry()
    doc = json.loads(encode(entry, blobs).config)
    for path, value in change.items():
        target = doc
        *parents, last = path.split("|")
        for p in parents:
            target = target[p]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return json.dumps(doc).encode()


APP = hash_bytes(DATA["bin/app"])


@pytest.mark.parametrize(("change", "match"), [
    ({"files|bin/app|digest": "ee" * 32}, "names no sha256"),
    ({"blobs|" + APP: None}, "names no sha256"),
    ({"files|bin/app|size": 1}, "size"),
    ({"files|bin/app|mode": 0o4755}, "mode"),
    ({"files|../../etc/passwd": {"digest": APP, "mode": 420, "size": 8}}, "escapes"),
    ({"files|/abs": {"digest": APP, "mode": 420, "size": 8}}, "escapes"),
    ({"schema": 99}, "schema"),
    ({"blobs|" + APP + "|sha256": "md5:xyz"}, "bad blob reference"),
    ({"files": "nope"}, "malformed"),
])
def test_entry_json_that_could_hurt_is_refused(change: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArtifact, match=match):
        parse_config(KEY, _tampered(change), None)


def test_a_file_under_a_symlinked_dir_is_refused() -> None:
    app = DATA["bin/app"]
    entry, blobs = _entry([
        OutputFile("bin", hash_bytes(DATA["bin/other"]), 0o777, 0, "/etc"),
        OutputFile("bin/passwd", hash_bytes(app), 0o644, len(app)),
    ])
    with pytest.raises(InvalidArtifact, match="under a symlink"):
        parse_config(KEY, encode(entry, blobs).config, None)


# -- signing ---------------------------------------------------------------------------------

def test_sign_and_verify() -> None:
    key = SigningKey.generate("ci-1")
    pub = key.public()
    msg = signed_message(KEY, "sha256:" + "1" * 64)
    sig = key.sign(msg)
    assert sig.startswith("ci-1:")
    assert pub.verify(msg, sig)
    assert not pub.verify(signed_message("cd" * 32, "sha256:" + "1" * 64), sig)  # other key
    assert not pub.verify(signed_message(KEY, "sha256:" + "2" * 64), sig)  # other entry
    assert not SigningKey.generate("ci-1").public().verify(msg, sig)  # other key, same name
    renamed = "laptop-1:" + sig.partition(":")[2]
    assert not pub.verify(msg, renamed)
    assert not pub.verify(msg, "ci-1:!!notbase64")


def test_key_text_round_trips() -> None:
    key = SigningKey.generate("n-1")
    assert SigningKey.parse(key.secret_text()) == key
    assert PublicKey.parse(str(key.public())) == key.public()
    assert "n-1" in repr(key) and key.secret_text() not in repr(key)


@pytest.mark.parametrize("text", ["nocolon", ":AAAA", "n:not base64!", "n:AAAA"])
def test_bad_key_text_is_a_recipe_error(text: str) -> None:
    with pytest.raises(RecipeError, match="keygen"):
        PublicKey.parse(text)


def test_keygen_writes_a_private_secret_and_refuses_to_overwrite(tmp_path: Path) -> None:
    secret, public = write_keypair(tmp_path / "keys", "ci-1")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    key = SigningKey.parse(secret.read_text())
    assert PublicKey.parse(public.read_text()) == key.public()
    assert load_public_key("keys/ci-1.pub", tmp_path) == key.public()
    assert load_public_key(public.read_text().strip(), tmp_path) == key.public()
    with pytest.raises(RecipeError, match="already exists"):
        write_keypair(tmp_path / "keys", "ci-1")
    with pytest.raises(RecipeError, match="cannot read"):
        load_public_key("missing.pub", tmp_path)
