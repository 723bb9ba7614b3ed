"""After an image is published: per platform, its SBOM and provenance (and, with a cosign
key, signatures of the index, each platform manifest and the attestations), attached as
referrers wherever the image went (pushed repositories, an ``oci:DIR`` layout)."""

from __future__ import annotations

import base64
import importlib.metadata
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from crossplan.attest import referrers as ref
from crossplan.attest.contents import ImageFacts, collect
from crossplan.attest.cosign import (
    SIMPLE_SIGNING,
    CosignKey,
    dsse_envelope,
    simple_signing_payload,
)
from crossplan.attest.provenance import PREDICATE_TYPE, STATEMENT_TYPE, provenance_json
from crossplan.backends.oci.descriptor import canonical_json
from crossplan.backends.oci.registry import RegistryClient
from crossplan.cache.store import Entry, Store
from crossplan.executors.result import ImageResult
from crossplan.imageref import Reference
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import Plan
from crossplan.platforms import Platform

__all__ = ["AttestOptions", "Documents", "attest_image", "documents"]

__version__ = importlib.metadata.version("crossplan")
TITLE = "org.opencontainers.image.title"  # `oras pull` saves a layer under this name
DSSE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
SBOM_TYPES = {"spdx": "application/spdx+json", "cyclonedx": "application/vnd.cyclonedx+json"}
SBOM_PREDICATES = {"spdx": "https://spdx.dev/Document", "cyclonedx": "https://cyclonedx.org/bom"}


@dataclass(frozen=True)
class AttestOptions:
    sbom: str = "spdx"  # spdx | cyclonedx | none
    provenance: bool = True
    key: CosignKey | None = None

    @property
    def enabled(self) -> bool:
        return self.sbom != "none" or self.provenance or self.key is not None


@dataclass(frozen=True)
class Documents:
    """One platform's documents (bytes exactly as attached)."""

    platform: str
    subject: str  # the platform manifest digest
    size: int
    sbom: bytes | None
    provenance: bytes | None  # the in-toto statement
    sbom_format: str = "spdx"  # spdx | cyclonedx


def _sbom(facts: ImageFacts, fmt: str) -> bytes | None:
    if fmt == "spdx":
        from crossplan.attest.spdx import spdx_json

        return spdx_json(facts, __version__)
    if fmt == "cyclonedx":
        from crossplan.attest.cyclonedx import cyclonedx_json

        return cyclonedx_json(facts, __version__)
    return None


def documents(
    plan: Plan, image: ImageResult, layout: Path, keys: Mapping[NodeId, str],
    outputs: Mapping[NodeId, Mapping[str, str]], opts: AttestOptions, *, subject_name: str,
) -> list[Documents]:
    """SBOM and provenance of every platform of ``image`` (its stored ``layout``)."""
    out = []
    for plat, digest in sorted(image.manifests.items()):
        facts = collect(plan, image.step, Platform.parse(plat), layout, digest, keys)
        size = (layout / "blobs" / "sha256" / digest.partition(":")[2]).stat().st_size
        prov = provenance_json(facts, plan, keys, outputs, subject_name=subject_name,
                               tool_version=__version__) if opts.provenance else None
        out.append(Documents(plat, digest, size, _sbom(facts, opts.sbom), prov, opts.sbom))
    return out


def _statement(subject_name: str, digest: str, predicate_type: str, predicate: bytes) -> bytes:
    import json

    return canonical_json({
        "_type": STATEMENT_TYPE, "predicateType": predicate_type,
        "subject": [{"name": subject_name, "digest": {"sha256": digest.partition(":")[2]}}],
        "predicate": json.loads(predicate),
    })


def _artifacts(d: Documents, opts: AttestOptions, sde: int, repo: str
               ) -> tuple[list[ref.Artifact], list[tuple[str, bytes, Mapping[str, str]]]]:
    """The referrers of one platform manifest, and the layers of its cosign ``.att`` tag."""
    subject = (d.subject, d.size)
    arts: list[ref.Artifact] = []
    att: list[tuple[str, bytes, Mapping[str, str]]] = []
    if d.sbom is not None:
        fmt = d.sbom_format
        mt = SBOM_TYPES[fmt]
        title = {TITLE: "sbom.spdx.json" if fmt == "spdx" else "sbom.cdx.json"}
        arts.append(ref.artifact("sbom", mt, subject, [(mt, d.sbom, title)], created=sde))
        if opts.key is not None:
            stmt = _statement(repo, d.subject, SBOM_PREDICATES[fmt], d.sbom)
            att.append((DSSE, dsse_envelope(stmt, opts.key),
                        {"dev.cosignproject.cosign/signature": "",
                         "predicateType": SBOM_PREDICATES[fmt]}))
    if d.provenance is not None:
        ann = {"in-toto.io/predicate-type": PREDICATE_TYPE}
        if opts.key is not None:
            env = dsse_envelope(d.provenance, opts.key)
            arts.append(ref.artifact("provenance", IN_TOTO, subject, [
                (DSSE, env, {**ann, TITLE: "provenance.dsse.json"})],
                                     created=sde, annotations=ann))
            att.append((DSSE, env, {"dev.cosignproject.cosign/signature": "",
                                    "predicateType": PREDICATE_TYPE}))
        else:
            arts.append(ref.artifact("provenance", IN_TOTO, subject,
                                     [(IN_TOTO, d.provenance,
                                       {**ann, TITLE: "provenance.intoto.json"})], created=sde,
                                     annotations=ann))
    if opts.key is not None:
        payload = simple_signing_payload(repo, d.subject)
        sig = base64.b64encode(opts.key.sign(payload)).decode()
        arts.append(ref.cosign_signature_artifact(subject, payload, sig, created=sde))
    return arts, att


def _sig_layer(key: CosignKey, repo: str, digest: str) -> tuple[str, bytes, Mapping[str, str]]:
    payload = simple_signing_payload(repo, digest)
    sig = base64.b64encode(key.sign(payload)).decode()
    return (SIMPLE_SIGNING, payload, {"dev.cosignproject.cosign/signature": sig})


def attest_image(
    plan: Plan, image: ImageResult, entry: Entry, store: Store, keys: Mapping[NodeId, str],
    outputs: Mapping[NodeId, Mapping[str, str]], opts: AttestOptions, *,
    layout_out: Path | None,
) -> ImageResult:
    """Attach ``image``'s attestations where it was published: each pushed repository and
    ``layout_out`` (an ``oci:`` directory). Returns the result with what was attached."""
    repos = {r.name: r for r in map(Reference.parse, image.pushed)}  # name -> a reference
    if not opts.enabled or not (repos or layout_out):
        return image
    step = plan.recipe.steps[image.step]
    tags = getattr(step, "tags", ())
    subject_name = Reference.parse(tags[0]).name if tags else image.step
    with tempfile.TemporaryDirectory(dir=store.root / "tmp") as tmp:
        store.materialize(entry, Path(tmp))
        layout = Path(tmp) / "oci"
        missing = [p for p, d in image.manifests.items()
                   if not (layout / "blobs" / "sha256" / d.partition(":")[2]).is_file()]
        if missing:  # published from elsewhere than the stored layout (a builder's own push)
            return replace(image, notes=(*image.notes, "no attestations: the published "
                                         f"manifests of {', '.join(sorted(missing))} are not "
                                         "in the stored layout"))
        docs = documents(plan, image, layout, keys, outputs, opts, subject_name=subject_name)
    sde = plan.source_date_epoch
    attached: dict[str, list[str]] = {}
    notes = list(image.notes)
    for repo, r in repos.items():
        with RegistryClient(r.registry) as client:
            how = ""
            for d in docs:
                arts, att = _artifacts(d, opts, sde, repo)
                how = ref.push_artifacts(client, r.repository, d.subject, arts)
                attached[d.platform] = [f"{a.kind} {a.digest}" for a in arts]
                if opts.key is not None:
                    tag = ref.referrers_tag(d.subject)
                    ref.push_cosign_tag(client, r.repository, f"{tag}.sig",
                                        [_sig_layer(opts.key, repo, d.subject)])
                    if att:
                        ref.push_cosign_tag(client, r.repository, f"{tag}.att", att)
            if opts.key is not None:
                tag = ref.referrers_tag(image.index_digest)
                ref.push_cosign_tag(client, r.repository, f"{tag}.sig",
                                    [_sig_layer(opts.key, repo, image.index_digest)])
        notes.append(f"attestations attached to {repo} ({how})")
    if layout_out is not None:
        arts_all: list[ref.Artifact] = []
        for d in docs:
            arts, _ = _artifacts(d, opts, sde, subject_name)
            arts_all += arts
            attached[d.platform] = [f"{a.kind} {a.digest}" for a in arts]
        ref.write_to_layout(layout_out, arts_all)
        notes.append(f"attestations written into {layout_out}")
    return replace(image, notes=tuple(notes),
                   attestations={p: tuple(v) for p, v in sorted(attached.items())})
