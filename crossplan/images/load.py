"""One platform of a stored image into the local Docker engine (``plan load``).

An image node's store entry holds an OCI layout (``oci/``) whichever backend built it (the
buildx backend's ``buildx.json`` may say the build was deferred to a push: then there is
nothing to load). ``docker load`` takes an OCI layout tarball; the one written here holds
only the chosen platform's manifest, its config and layers, named by the
``io.containerd.image.name`` and ``org.opencontainers.image.ref.name`` annotations, so the
engine gets a single-platform image that ``docker run`` starts without ``--platform``.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from crossplan.backends.oci.layout import REF_NAME
from crossplan.backends.oci.mediatypes import INDEX_TYPES, MANIFEST_TYPES
from crossplan.cache.store import Entry, Store
from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.imageref import Reference, parse_tag_reference
from crossplan.images.protocol import LAYOUT_DIR
from crossplan.platforms import Platform

__all__ = ["CONTAINERD_NAME", "LoadedImage", "default_tag", "load_platform",
           "platform_archive", "select_manifest"]

CONTAINERD_NAME = "io.containerd.image.name"
META = "buildx.json"  # the buildx backend's record (images.buildx.META)


class Loader(Protocol):
    """What of the engine loading needs (``backends.buildx.engine.Engine``)."""

    def load(self, archive: Path) -> list[str]: ...

    def image_id(self, ref: str) -> str | None: ...


@dataclass(frozen=True)
class LoadedImage:
    """A platform of an image step, loaded into the engine as ``ref``."""

    step: str
    platform: Platform
    ref: str  # as given (``--tag``), e.g. localhost:5000/demo/hello:1.0
    name: str  # fully qualified, as the engine stores it
    manifest: str  # the platform's manifest digest
    index: str  # the stored image's index digest
    image_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"step": self.step, "platform": str(self.platform), "ref": self.ref,
                "name": self.name, "manifest": self.manifest, "index": self.index,
                "image_id": self.image_id}


def _slug(text: str) -> str:
    """A repository path component: lowercase alphanumerics joined by single dashes."""
    chars = "".join(c if c.isascii() and c.isalnum() else "-" for c in text.lower())
    return "-".join(p for p in chars.split("-") if p) or "image"


def default_tag(project: str, step: str, tags: tuple[str, ...] | list[str]) -> str:
    """The step's first tag, else ``crossplan/<project>-<step>:dev``."""
    if tags:
        return tags[0]
    return f"crossplan/{_slug(project)}-{_slug(step)}:dev"


def normalized(tag: str) -> Reference:
    """``foo`` -> ``docker.io/library/foo:latest``; RecipeError (exit 2) if not a tag."""
    ref = parse_tag_reference(tag)
    return ref if ref.tag else ref.with_tag("latest")


def _platform_of(doc: dict[str, Any]) -> Platform | None:
    p = doc.get("platform") or {}
    try:
        text = "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
        return Platform.parse(text) if text else None
    except RecipeError:  # attestations (unknown/unknown), platforms crossplan does not know
        return None


def _blob(layout: Path, digest: str) -> Path:
    algo, _, hexpart = digest.partition(":")
    return layout / "blobs" / algo / hexpart


def _read(layout: Path, digest: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(_blob(layout, digest).read_bytes())
    return doc


def select_manifest(layout: Path, platform: Platform) -> tuple[str, dict[str, Any], list[str]]:
    """(the top index digest, the descriptor of ``platform``'s manifest, the platforms the
    layout has) from an OCI layout whose ``index.json`` points at an image index (or at a
    single-platform manifest)."""
    top_doc = json.loads((layout / "index.json").read_text())
    tops = top_doc.get("manifests") or []
    indexes = [d for d in tops if d.get("mediaType") in INDEX_TYPES]
    top = indexes[0] if indexes else (tops[0] if tops else None)
    if top is None:
        raise EnvironmentProblem(f"the stored image layout {layout} lists no manifest")
    candidates: list[tuple[dict[str, Any], Platform | None]]
    if top.get("mediaType") in MANIFEST_TYPES:  # a single-platform image
        config = _read(layout, _read(layout, top["digest"])["config"]["digest"])
        found = _platform_of({"platform": {"os": config.get("os"),
                                           "architecture": config.get("architecture"),
                                           "variant": config.get("variant")}})
        candidates = [({**top, "platform": {"os": found.os, "architecture": found.arch,
                                            **({"variant": found.variant}
                                               if found.variant else {})}}, found)
                      ] if found else []
    else:
        candidates = [(d, _platform_of(d)) for d in _read(layout, top["digest"])["manifests"]]
    have = [str(p) for _, p in candidates if p is not None]
    for desc, plat in candidates:
        if plat == platform:
            return str(top["digest"]), desc, have
    return str(top["digest"]), {}, have


def platform_archive(layout: Path, desc: dict[str, Any], ref: Reference, archive: Path) -> None:
    """Write ``archive``: an OCI layout tarball of the one manifest ``desc`` (with its config
    and layers), named ``ref`` for ``docker load``."""
    manifest = _read(layout, desc["digest"])
    digests = [desc["digest"], manifest["config"]["digest"],
               *(layer["digest"] for layer in manifest.get("layers", []))]
    entry = {k: v for k, v in desc.items() if k != "annotations"}
    entry["annotations"] = {CONTAINERD_NAME: str(ref), REF_NAME: ref.tag or "latest"}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [entry]}
    with tarfile.open(archive, "w") as tf:
        for name, data in (("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                           ("index.json", json.dumps(index).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, _Bytes(data))
        for digest in dict.fromkeys(digests):
            path = _blob(layout, digest)
            tf.add(path, arcname=str(path.relative_to(layout)))


class _Bytes:
    """A minimal readable for ``tarfile.addfile``."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.pos + n
        chunk, self.pos = self.data[self.pos:end], min(end, len(self.data))
        return chunk


def load_platform(
    store: Store, entry: Entry, engine: Loader, *, step: str, platform: Platform, tag: str,
    label: str | None = None,
) -> LoadedImage:
    """Load ``platform``'s image of the stored image ``entry`` into ``engine`` as ``tag``."""
    ref = normalized(tag)
    with tempfile.TemporaryDirectory(dir=store.root / "tmp", prefix="load-") as tmp:
        store.materialize(entry, Path(tmp))
        meta_path = Path(tmp) / META
        if meta_path.exists():
            deferred = json.loads(meta_path.read_text()).get("deferred")
            if deferred:
                raise EnvironmentProblem(
                    f"nothing to load: {deferred['message']}", file=label, step=step,
                    hint="this builder only builds the image while pushing it; push it "
                    f"(`plan run --push`) and `docker pull --platform {platform}` it; "
                    + deferred.get("hint", ""),
                )
        layout = Path(tmp) / LAYOUT_DIR
        if not (layout / "index.json").is_file():
            raise EnvironmentProblem(f"the stored image of '{step}' has no OCI layout",
                                     file=label, step=step, hint="rebuild it: plan cache rm KEY")
        index, desc, have = select_manifest(layout, platform)
        if not desc:
            raise RecipeError(
                f"image step '{step}' does not build {platform}", file=label, step=step,
                hint="its platforms: " + (", ".join(have) or "none"),
            )
        archive = Path(tmp) / "load.tar"
        platform_archive(layout, desc, ref, archive)
        engine.load(archive)
    return LoadedImage(step, platform, tag, str(ref), str(desc["digest"]), index,
                       engine.image_id(str(ref)))
