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
_MAX_KEY_FILE = 4096  # a key line is under 300 bytes


def signed_message(key: str, config_digest: str) -> bytes:
    """What is signed for an entry: the action key and the sha256 of its entry JSON."""
    return _DOMAIN + key.encode() + b"\0" + config_digest.encode()


def _split(text: str, what: str, hint: str = _KEY_HINT) -> tuple[str, bytes]:
    """NAME and the 32 raw bytes of a ``NAME:BASE64`` key. Messages say what was read
    (``what``), never what it holds: a file may be anything (a secret, /etc/passwd)."""
    name, sep, b64 = text.strip().rpartition(":")
    if not sep or not name:
        raise RecipeError(f"{what} is not NAME:BASE64", hint=hint)
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise RecipeError(f"{what} is not NAME:BASE64 (not valid base64)", hint=hint) from None
    if len(raw) != 32:
        raise RecipeError(f"{what} must hold 32 bytes, not {len(raw)}", hint=hint)
    return name, raw


def _redact(text: str) -> str:
    return text if len(text) < 12 else text[:8] + "..."


def _file_hint(kind: str) -> str:
    return (f"a {kind} file holds one line NAME:BASE64 (a name, a colon and a 32-byte "
            f"ed25519 key in base64), as `plan cache keygen` writes it")


def _read_key_file(path: Path, what: str, kind: str) -> str:
    """The text of a small key file; a missing, unreadable, binary or large file is a
    RecipeError naming the file and the expected format, never showing its bytes."""
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise RecipeError(f"cannot read the {what} {path}: {exc.strerror or exc}",
                          hint=_KEY_HINT) from None
    if len(data) > _MAX_KEY_FILE:
        raise RecipeError(f"{what} {path} is not a key: over {_MAX_KEY_FILE} bytes",
                          hint=_file_hint(kind))
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise RecipeError(f"{what} {path} is not a key: not ASCII text",
                          hint=_file_hint(kind)) from None


@dataclass(frozen=True)
class PublicKey:
    """A trusted key: ``name`` says who signed, ``raw`` is the 32-byte ed25519 key."""

    name: str
    raw: bytes

    @classmethod
    def parse(cls, text: str, *, source: str | None = None) -> PublicKey:
        """``source`` names the file the text was read from (then the text is not shown)."""
        what = source or f"public key '{_redact(text)}'"
        name, raw = _split(text, what, _file_hint("public key") if source else _KEY_HINT)
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
    def parse(cls, text: str, *, source: str | None = None) -> SigningKey:
        """A secret: errors name ``source`` (the file) or just "signing key", never the text."""
        name, seed = _split(text, source or "signing key", _file_hint("signing key"))
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
    text = _read_key_file(path, "cache signing key file", "signing key")
    return SigningKey.parse(text, source=f"cache signing key file {path}")


def load_public_key(text: str, root: Path) -> PublicKey:
    """A ``trusted_keys`` item: ``NAME:BASE64`` itself, or a path to a ``.pub`` file."""
    if ":" in text and not text.endswith(".pub"):
        return PublicKey.parse(text)
    path = (root / text).expanduser()
    return PublicKey.parse(_read_key_file(path, "trusted key file", "public key"),
                           source=f"trusted key file {path}")


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
