"""cosign key handling and signing: a key in cosign's encrypted format (made here with the
same primitives cosign uses: scrypt + NaCl secretbox around PKCS#8) decrypts with its
password, refuses a wrong one with a clear error, and signs deterministically; DSSE's
pre-authentication encoding and envelopes verify with the public key."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from nacl.secret import SecretBox

from crossplan.attest.cosign import (
    dsse_envelope,
    load_cosign_key,
    pae,
    simple_signing_payload,
)
from crossplan.errors import EnvironmentProblem, RecipeError


def _cosign_key(path: Path, password: str) -> ec.EllipticCurvePrivateKey:
    """Write ``path`` as `cosign generate-key-pair` would (small scrypt cost for speed)."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    salt, nonce = os.urandom(32), os.urandom(24)
    secret = Scrypt(salt=salt, length=32, n=1024, r=8, p=1).derive(password.encode())
    box = SecretBox(secret).encrypt(der, nonce).ciphertext
    doc = {"kdf": {"name": "scrypt", "params": {"N": 1024, "r": 8, "p": 1},
                   "salt": base64.b64encode(salt).decode()},
           "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
           "ciphertext": base64.b64encode(box).decode()}
    body = base64.b64encode(json.dumps(doc).encode()).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    path.write_text("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" + "\n".join(lines)
                    + "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    return key


def test_key_decrypts_and_signs_deterministically(tmp_path: Path) -> None:
    original = _cosign_key(tmp_path / "cosign.key", "pw")
    key = load_cosign_key(tmp_path / "cosign.key", "pw")
    expected = original.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key.public_pem == expected
    payload = simple_signing_payload("r/x", "sha256:" + "a" * 64)
    sig = key.sign(payload)
    assert sig == key.sign(payload)  # RFC 6979: the same bytes every time
    original.public_key().verify(sig, payload, ec.ECDSA(hashes.SHA256()))
    claim = json.loads(payload)
    assert claim["critical"]["image"]["docker-manifest-digest"] == "sha256:" + "a" * 64
    assert claim["critical"]["type"] == "cosign container image signature"


@pytest.mark.parametrize(("password", "error", "text"), [
    ("wrong", RecipeError, "wrong COSIGN_PASSWORD"),
    (None, EnvironmentProblem, "COSIGN_PASSWORD is not set"),
])
def test_bad_password_is_a_clear_error(tmp_path: Path, password: str | None,
                                       error: type[Exception], text: str) -> None:
    _cosign_key(tmp_path / "cosign.key", "pw")
    with pytest.raises(error, match=text):
        load_cosign_key(tmp_path / "cosign.key", password)


@pytest.mark.parametrize(("content", "text"), [
    (None, "cannot read"),
    ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a cosign private key"),
    ("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nbm90IGpzb24=\n"
     "-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n", "not a valid cosign key"),
])
def test_not_a_key_names_the_file(tmp_path: Path, content: str | None, text: str) -> None:
    path = tmp_path / "k"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RecipeError, match=text) as info:
        load_cosign_key(path, "pw", what="[sign] key")
    assert str(path) in str(info.value) and "[sign] key" in str(info.value)


def test_dsse_envelope_signs_the_pae(tmp_path: Path) -> None:
    original = _cosign_key(tmp_path / "cosign.key", "")
    key = load_cosign_key(tmp_path / "cosign.key", "")
    statement = b'{"_type":"https://in-toto.io/Statement/v1"}'
    env = json.loads(dsse_envelope(statement, key))
    assert env["payloadType"] == "application/vnd.in-toto+json"
    assert base64.b64decode(env["payload"]) == statement
    assert pae("t", b"ab") == b"DSSEv1 1 t 2 ab"
    sig = base64.b64decode(env["signatures"][0]["sig"])
    original.public_key().verify(sig, pae(env["payloadType"], statement),
                                 ec.ECDSA(hashes.SHA256()))
