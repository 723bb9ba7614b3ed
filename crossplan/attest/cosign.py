"""cosign-compatible signing: load a key in cosign's encrypted format (``cosign
generate-key-pair``: PEM "ENCRYPTED SIGSTORE PRIVATE KEY", a JSON box of scrypt + NaCl
secretbox around a PKCS#8 key, password from ``COSIGN_PASSWORD``), sign the "simple
signing" payload of a manifest digest, and wrap in-toto statements in signed DSSE
envelopes. ECDSA signatures are deterministic (RFC 6979), so re-signing gives the same
bytes."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from crossplan.errors import EnvironmentProblem, RecipeError

__all__ = ["SIMPLE_SIGNING", "CosignKey", "dsse_envelope", "load_cosign_key", "pae",
           "simple_signing_payload"]

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
_PEM_TYPES = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")


@dataclass(frozen=True)
class CosignKey:
    """A loaded signing key (ECDSA P-256/384 or Ed25519) and its public key PEM."""

    private: object
    public_pem: bytes

    def sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519

        if isinstance(self.private, ec.EllipticCurvePrivateKey):
            return self.private.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        if isinstance(self.private, ed25519.Ed25519PrivateKey):
            return self.private.sign(data)
        raise RecipeError("unsupported cosign key type", hint="use `cosign generate-key-pair`")


def load_cosign_key(path: Path, password: str | None, *, what: str = "[sign] key"
                    ) -> CosignKey:
    """Decrypt a cosign private key file. A wrong password or format is a RecipeError."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_der_private_key,
    )
    from nacl.exceptions import CryptoError
    from nacl.secret import SecretBox

    try:
        text = path.read_text()
    except OSError as exc:
        raise RecipeError(f"{what}: cannot read {path}: {exc.strerror}",
                          hint="make one with `cosign generate-key-pair`") from None
    lines = text.strip().splitlines()
    if len(lines) < 3 or not any(lines[0] == f"-----BEGIN {t}-----" for t in _PEM_TYPES):
        raise RecipeError(f"{what}: {path} is not a cosign private key",
                          hint="expected '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----' "
                               "(from `cosign generate-key-pair`)")
    if password is None:
        raise EnvironmentProblem(f"{what}: COSIGN_PASSWORD is not set",
                                 hint="export COSIGN_PASSWORD (empty for a key without one)")
    try:
        box = json.loads(base64.b64decode("".join(lines[1:-1])))
        kdf, cipher = box["kdf"], box["cipher"]
        if kdf["name"] != "scrypt" or cipher["name"] != "nacl/secretbox":
            raise ValueError(f"unsupported kdf/cipher {kdf['name']}/{cipher['name']}")
        params = kdf["params"]
        secret = Scrypt(salt=base64.b64decode(kdf["salt"]), length=32, n=int(params["N"]),
                        r=int(params["r"]), p=int(params["p"])).derive(password.encode())
        der = SecretBox(secret).decrypt(base64.b64decode(box["ciphertext"]),
                                        base64.b64decode(cipher["nonce"]))
    except CryptoError:
        raise RecipeError(f"{what}: cannot decrypt {path}: wrong COSIGN_PASSWORD?",
                          hint="set COSIGN_PASSWORD to the key's password") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise RecipeError(f"{what}: {path} is not a valid cosign key: {exc}") from None
    try:
        private = load_der_private_key(der, None)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise RecipeError(f"{what}: {path}: unreadable private key: {exc}") from None
    public = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return CosignKey(private, public)


def simple_signing_payload(repository: str, digest: str) -> bytes:
    """What cosign signs for an image: the "cosign container image signature" claim."""
    doc = {"critical": {"identity": {"docker-reference": repository},
                        "image": {"docker-manifest-digest": digest},
                        "type": "cosign container image signature"},
           "optional": None}
    return json.dumps(doc, separators=(",", ":")).encode()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding (what the signature covers)."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def dsse_envelope(statement: bytes, key: CosignKey) -> bytes:
    """A DSSE envelope around an in-toto statement, signed with ``key``."""
    sig = key.sign(pae(IN_TOTO, statement))
    env: Mapping[str, object] = {
        "payloadType": IN_TOTO,
        "payload": base64.b64encode(statement).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}],
    }
    return json.dumps(env, separators=(",", ":")).encode()
