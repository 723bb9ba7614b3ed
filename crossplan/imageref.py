"""Parse image references like ``localhost:5000/demo/hello:1.0`` or ``alpine@sha256:...``."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from crossplan.errors import RecipeError

__all__ = ["DOCKER_HUB", "Reference", "is_loopback", "parse_tag_reference"]

DOCKER_HUB = "docker.io"
_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?")
_LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")
_FORMAT_HINT = (
    "write it as HOST[:PORT]/REPO[:TAG][@sha256:DIGEST], e.g. localhost:5000/demo/hello:1.0"
)
_TAG_HINT = (
    "write it as [HOST[:PORT]/]REPO[:TAG]: a lowercase repository path, a tag of letters, "
    "digits, _ . - (at most 128, not starting with . or -), e.g. localhost:5000/demo/hello:1.0"
)


def _is_registry(first: str) -> bool:
    """Whether a reference's first path component names a registry (else it is Docker Hub)."""
    return "." in first or ":" in first or first == "localhost" or first[:1] == "["


def is_loopback(registry: str) -> bool:
    """``localhost:5000``, ``127.0.0.1``, ``[::1]:5000`` are spoken to over plain http."""
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    return host in _LOOPBACK or registry in _LOOPBACK


@dataclass(frozen=True)
class Reference:
    """A registry, a repository and optionally a tag and/or a digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        raw = text.strip().removeprefix("docker://")
        name, tag, digest = raw, None, None
        if "@" in name:
            name, digest = name.rsplit("@", 1)
            if not _DIGEST.fullmatch(digest):
                raise RecipeError(f"bad digest in image reference '{text}'", hint=_FORMAT_HINT)
        colon = name.rfind(":")
        if colon > name.rfind("/") and not name.endswith("]"):
            name, tag = name[:colon], name[colon + 1 :]
            if not _TAG.fullmatch(tag):
                raise RecipeError(f"bad tag '{tag}' in image reference '{text}'", hint=_FORMAT_HINT)
        first, slash, rest = name.partition("/")
        if slash and _is_registry(first):
            registry, repository = first, rest
        else:
            registry, repository = DOCKER_HUB, name
        if registry in _HUB_ALIASES:
            registry = DOCKER_HUB
        if registry == DOCKER_HUB and "/" not in repository:
            repository = f"library/{repository}"
        if not _PATH.fullmatch(repository):
            raise RecipeError(
                f"bad repository '{repository}' in image reference '{text}'", hint=_FORMAT_HINT
            )
        return cls(registry, repository, tag, digest)

    @property
    def ref(self) -> str:
        """What goes after ``/manifests/``: the digest if pinned, else the tag (or ``latest``)."""
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    def with_tag(self, tag: str) -> Reference:
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        return replace(self, digest=digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_tag_reference(text: str) -> Reference:
    """A reference to publish to, spelled exactly: ``[HOST[:PORT]/]REPO[:TAG]`` with nothing
    to strip (no spaces, no ``docker://``), no digest, a valid registry host and port."""
    shown = repr(text if len(text) <= 80 else text[:64] + "...")
    if not text or not text.isprintable() or any(c.isspace() for c in text) or "://" in text:
        raise RecipeError(f"image tag {shown} is not an image reference", hint=_TAG_HINT)
    if "@" in text:
        raise RecipeError(
            f"image tag {shown} has a digest: a published image is named by a tag", hint=_TAG_HINT
        )
    try:
        ref = Reference.parse(text)
    except RecipeError as exc:
        raise RecipeError(f"image tag {shown}: {exc.message.partition(' in image ')[0]}",
                          hint=_TAG_HINT) from None
    first, slash, _ = text.partition("/")
    if slash and _is_registry(first):
        port = first.rpartition("]")[2].rpartition(":")[2] if ":" in first else ""
        if not _HOST.fullmatch(first) or (port.isdigit() and int(port) > 65535):
            raise RecipeError(f"image tag {shown}: bad registry host '{first}'", hint=_TAG_HINT)
    if len(ref.repository) > 255:
        raise RecipeError(f"image tag {shown}: repository name over 255 characters",
                          hint=_TAG_HINT)
    return ref
