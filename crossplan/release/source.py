"""Where a released image is read from: a registry reference or an OCI layout (``oci:DIR[:REF]``).

Both give the same three verified reads (top document, manifests, blobs by digest), so the
report does not care where the image lives.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from typing import Any, Protocol

from crossplan.backends.oci.descriptor import sha256_digest, verify_digest
from crossplan.backends.oci.layout import REF_NAME, LayoutRef, parse_layout_ref
from crossplan.backends.oci.mediatypes import INDEX_TYPES
from crossplan.backends.oci.reference import Reference
from crossplan.backends.oci.registry import RegistryClient
from crossplan.errors import EnvironmentProblem, RecipeError

__all__ = [
    "ImageSource", "LayoutSource", "RegistrySource", "open_source", "plan_references", "sibling",
]


class ImageSource(Protocol):
    """An image (index or single manifest) and the content it references."""

    @property
    def name(self) -> str: ...

    def top(self) -> tuple[bytes, str]:
        """(bytes, digest) of the document the reference names."""
        ...

    def manifest(self, digest: str) -> bytes: ...

    def blob(self, digest: str) -> bytes: ...

    def referrers(self, digest: str) -> list[dict[str, Any]]:
        """Descriptors of the artifacts whose ``subject`` is ``digest`` (SBOMs,
        provenance, signatures): the OCI referrers API, else the referrers tag schema."""
        ...

    def close(self) -> None: ...


class RegistrySource:
    """An image in a registry; every read is verified against its digest."""

    def __init__(self, ref: Reference, client: RegistryClient | None = None) -> None:
        self.ref = ref
        self.client = client or RegistryClient(ref.registry)
        self._own = client is None

    @property
    def name(self) -> str:
        return str(self.ref)

    def top(self) -> tuple[bytes, str]:
        found = self.client.get_manifest(self.ref.repository, self.ref.ref)
        if found is None:
            raise RecipeError(
                f"image {self.ref} not found",
                hint=f"check the tag; the registry lists them at "
                f"/v2/{self.ref.repository}/tags/list",
            )
        return found[0], sha256_digest(found[0])

    def manifest(self, digest: str) -> bytes:
        found = self.client.get_manifest(self.ref.repository, digest)
        if found is None:
            raise EnvironmentProblem(f"manifest {digest} is missing from {self.ref.name}",
                                     hint="the image is incomplete in the registry; push it again")
        return found[0]

    def blob(self, digest: str) -> bytes:
        return self.client.get_blob(self.ref.repository, digest)

    def referrers(self, digest: str) -> list[dict[str, Any]]:
        repo = self.ref.repository
        index = self.client.referrers(repo, digest)
        if index is None:
            algo, _, hexpart = digest.partition(":")
            found = self.client.get_manifest(repo, f"{algo}-{hexpart}")
            index = found[0] if found else None
        return list(json.loads(index).get("manifests") or []) if index else []

    def close(self) -> None:
        if self._own:
            self.client.close()


@dataclass
class LayoutSource:
    """An OCI image layout directory or archive, as ``plan run --output`` writes them."""

    ref: LayoutRef

    @property
    def name(self) -> str:
        return str(self.ref)

    def _read(self, name: str) -> bytes:
        try:
            if self.ref.kind == "oci":
                return (self.ref.path / name).read_bytes()
            with tarfile.open(self.ref.path) as tar:
                for member in tar:
                    if member.name.removeprefix("./") == name and (fh := tar.extractfile(member)):
                        return fh.read()
            raise FileNotFoundError(name)
        except (OSError, tarfile.TarError) as exc:
            raise EnvironmentProblem(
                f"cannot read {name} from {self.ref}: {exc}",
                hint="is it a complete OCI layout (oci-layout, index.json, blobs/)?",
            ) from None

    def _by_digest(self, digest: str) -> bytes:
        algo, _, hexpart = digest.partition(":")
        return verify_digest(self._read(f"blobs/{algo}/{hexpart}"), digest, what=str(self.ref))

    def top(self) -> tuple[bytes, str]:
        entries: list[dict[str, Any]] = json.loads(self._read("index.json")).get("manifests", [])
        refs = [(e.get("annotations") or {}).get(REF_NAME) for e in entries]
        names = sorted({n for n in refs if n})
        if self.ref.ref is not None:
            chosen = [e for e, n in zip(entries, refs, strict=True) if n == self.ref.ref]
        else:
            indexes = [e for e in entries if e.get("mediaType") in INDEX_TYPES]
            chosen = indexes if len(indexes) == 1 else entries
        if len(chosen) != 1:
            raise RecipeError(
                f"{self.ref}: expected one image, found {len(chosen)}",
                hint="name one with ':REF'" + (f" (refs: {', '.join(names)})" if names else ""),
            )
        digest = str(chosen[0]["digest"])
        return self._by_digest(digest), digest

    def manifest(self, digest: str) -> bytes:
        return self._by_digest(digest)

    def blob(self, digest: str) -> bytes:
        return self._by_digest(digest)

    def referrers(self, digest: str) -> list[dict[str, Any]]:
        """Manifests listed in ``index.json`` whose subject is ``digest``."""
        out = []
        for e in json.loads(self._read("index.json")).get("manifests", []):
            if e.get("mediaType") in INDEX_TYPES or e.get("digest") == digest:
                continue
            doc = json.loads(self._by_digest(str(e["digest"])))
            if (doc.get("subject") or {}).get("digest") == digest:
                art = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
                out.append({**e, "artifactType": art, "annotations": doc.get("annotations")
                            or e.get("annotations") or {}})
        return out

    def close(self) -> None:
        pass


def open_source(text: str) -> ImageSource:
    """``oci:DIR[:REF]``, ``oci-archive:FILE[:REF]`` or a registry reference."""
    layout = parse_layout_ref(text)
    if layout is not None:
        return LayoutSource(layout)
    return RegistrySource(Reference.parse(text))


def sibling(of: str, text: str) -> str:
    """``--against 0.9``: a bare tag means the same repository (or layout) as ``of``."""
    if "/" in text or parse_layout_ref(text) is not None:
        return text
    layout = parse_layout_ref(of)
    if layout is not None:
        return str(LayoutRef(layout.kind, layout.path, text))
    return str(Reference.parse(of).with_tag(text))


def plan_references(tags: list[tuple[str, tuple[str, ...]]], image: str | None) -> list[str]:
    """What ``plan report [IMAGE]`` reads: IMAGE if it is a reference or a layout; else each
    image step's first tag (``(step, tags)`` pairs), with its tag replaced by a bare IMAGE."""
    if image is not None and ("/" in image or parse_layout_ref(image) is not None):
        return [image]
    refs = [tagged[0] for _, tagged in tags if tagged]
    if not refs:
        raise RecipeError(
            "no image to report on: the recipe has no image step with tags",
            hint="name one: plan report REGISTRY/REPO:TAG or plan report oci:DIR",
        )
    return [sibling(ref, image) if image else ref for ref in refs]
