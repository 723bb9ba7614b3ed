"""ed25519 signatures for remote cache entries, in Nix's ``name:base64`` key format.

A signature binds an action key to the exact entry JSON pushed for it::

    message = b"crossplan-action-v1\\0" + key + b"\\0" + sha256 of the entry JSON

so a signed entry cannot be re-tagged under another key, nor its outputs swapped: the
entry JSON names every output's blake3 and sha256 digest.
"""

from __future__ import annotations

import base64
import binascii
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from crossplan.errors import RecipeError

__all__ = [
    "PublicKey",
    "SigningKey",
    "default_key_name",
    "load_public_key",
    "load_signing_key",
    "signed_message",
    "write_keypair",
]

_DOMAIN = b"crossplan-action-v1\0"
_KEY_HINT = "generate a pair with `plan cache keygen`; public keys look like 'NAME:BASE64'"


def signed_message(key: str, config_digest: str) -> bytes:
    """What is signed for an entry: the action key and the sha256 of its entry JSON."""
    return _DOMAIN + key.encode() + b"\0" + config_digest.encode()


def _split(text: str, what: str) -> tuple[str, bytes]:
    name, sep, b64 = text.strip().rpartition(":")
    if not sep or not name:
        raise RecipeError(f"{what} '{_redact(text)}' is not NAME:BASE64", hint=_KEY_HINT)
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise RecipeError(f"{what} '{_redact(text)}' is not valid base64", hint=_KEY_HINT) from None
    if len(raw) != 32:
        raise RecipeError(f"{what} for '{name}' must be 32 bytes, not {len(raw)}", hint=_KEY_HINT)
    return name, raw


def _redact(text: str) -> str:
    return text if len(text) < 12 else text[:8] + "..."


@dataclass(frozen=True)
class PublicKey:
    """A trusted key: ``name`` says who signed, ``raw`` is the 32-byte ed25519 key."""

    name: str
    raw: bytes

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        name, raw = _split(text, "public key")
        return cls(name, raw)

    def __str__(self) -> str:
        return f"{self.name}:{base64.b64encode(self.raw).decode()}"

    def verify(self, message: bytes, signature: str) -> bool:
        """True when ``signature`` (``name:base64``) is this key's signature of ``message``."""
        name, _, b64 = signature.rpartition(":")
        if name != self.name:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(base64.b64decode(b64), message)
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    """A secret key (32-byte seed) and its name."""

    name: str
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> SigningKey:
        return cls(name, os.urandom(32))

    @classmethod
    def parse(cls, text: str) -> SigningKey:
        name, seed = _split(text, "signing key")
        return cls(name, seed)

    def __repr__(self) -> str:
        return f"SigningKey({self.name!r})"

    def sign(self, message: bytes) -> str:
        sig = Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)
        return f"{self.name}:{base64.b64encode(sig).decode()}"

    def public(self) -> PublicKey:
        pub = Ed25519PrivateKey.from_private_bytes(self.seed).public_key()
        return PublicKey(self.name, pub.public_bytes(Encoding.Raw, PublicFormat.Raw))

    def secret_text(self) -> str:
        return f"{self.name}:{base64.b64encode(self.seed).decode()}"


def default_key_name() -> str:
    return f"{socket.gethostname().split('.')[0] or 'crossplan'}-1"


def load_signing_key(path: Path) -> SigningKey:
    try:
        text = path.read_text()
    except OSError as exc:
        raise RecipeError(
            f"cannot read the cache signing key {path}: {exc.strerror or exc}", hint=_KEY_HINT
        ) from None
    return SigningKey.parse(text)


def load_public_key(text: str, root: Path) -> PublicKey:
    """A ``trusted_keys`` item: ``NAME:BASE64`` itself, or a path to a ``.pub`` file."""
    if ":" in text and not text.endswith(".pub"):
        return PublicKey.parse(text)
    path = (root / text).expanduser()
    try:
        return PublicKey.parse(path.read_text())
    except OSError as exc:
        raise RecipeError(
            f"cannot read trusted key file {path}: {exc.strerror or exc}", hint=_KEY_HINT
        ) from None


def write_keypair(directory: Path, name: str) -> tuple[Path, Path]:
    """Write ``NAME.key`` (mode 0600) and ``NAME.pub`` into ``directory``; refuse to overwrite."""
    directory.mkdir(parents=True, exist_ok=True)
    key = SigningKey.generate(name)
    secret, public = directory / f"{name}.key", directory / f"{name}.pub"
    for p in (secret, public):
        if p.exists():
            raise RecipeError(f"{p} already exists", hint="remove it or pick another --name")
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.secret_text() + "\n")
    public.write_text(str(key.public()) + "\n")
    return secret, public
