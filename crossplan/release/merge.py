"""Multi-platform indexes from per-platform pushes (pure): the native-runner fan-out.

Each per-platform CI job pushes its images by digest and writes one ``PlatformRecord`` per
image step (``plan publish-platform``); the last job reads them all and assembles each
step's index (``plan publish-index``). The index is the one a single runner would have
built: the same manifest descriptors in platform order, the same annotations, canonical
JSON, hence the same digest::

    records = read_records(Path(".crossplan/digests"))
    for merged in merge_records(records):       # one per image step, every platform present
        merged.index                            # the index bytes to push, then the tags
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossplan.backends.oci.descriptor import Descriptor, canonical_json, sha256_digest
from crossplan.backends.oci.mediatypes import OCI_INDEX, OCI_MANIFEST
from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.platforms import Platform

__all__ = [
    "RECORD_KIND",
    "MergedIndex",
    "PlatformRecord",
    "assemble_index",
    "merge_records",
    "read_records",
    "write_record",
]

RECORD_KIND = "crossplan.platform-image/v1"


@dataclass(frozen=True)
class PlatformRecord:
    """One image step's manifest for one platform, pushed by digest to every repository of
    ``tags``; ``platforms`` is every platform the step's index must list; ``annotations``
    the index annotations (created, revision, source) the per-platform build computed."""

    step: str
    manifest: Descriptor  # media type, digest, size and platform of the pushed manifest
    platforms: tuple[Platform, ...]
    tags: tuple[str, ...]  # REGISTRY/REPO:TAG, as in the recipe
    arch_tags: bool
    annotations: Mapping[str, str]

    @property
    def platform(self) -> Platform:
        assert self.manifest.platform is not None
        return self.manifest.platform

    def file_name(self) -> str:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", self.step)
        return f"{safe}@{str(self.platform).replace('/', '-')}.json"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": RECORD_KIND, "step": self.step, "manifest": self.manifest.to_json(),
            "platforms": [str(p) for p in self.platforms], "tags": list(self.tags),
            "arch_tags": self.arch_tags, "annotations": dict(self.annotations),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], *, source: str = "record") -> PlatformRecord:
        try:
            if doc.get("kind") != RECORD_KIND:
                raise ValueError(f"kind is {doc.get('kind')!r}, expected {RECORD_KIND!r}")
            manifest = Descriptor.from_json(doc["manifest"])
            if manifest.platform is None or manifest.media_type != OCI_MANIFEST:
                raise ValueError("the manifest descriptor needs a platform and an OCI type")
            return cls(
                step=str(doc["step"]), manifest=manifest,
                platforms=tuple(Platform.parse(p) for p in doc["platforms"]),
                tags=tuple(str(t) for t in doc["tags"]), arch_tags=bool(doc["arch_tags"]),
                annotations={str(k): str(v) for k, v in dict(doc["annotations"]).items()},
            )
        except (KeyError, TypeError, ValueError, RecipeError) as exc:
            raise RecipeError(f"{source}: not a platform image record: {exc}",
                              hint="write it with `plan publish-platform --digests DIR`") from None


def write_record(directory: Path, record: PlatformRecord) -> Path:
    """Write ``record`` into ``directory`` (created); returns the file."""
    path = directory / record.file_name()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record.to_json(), indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write {path}: {exc}") from None
    return path


def read_records(directory: Path) -> list[PlatformRecord]:
    """Every ``*.json`` record of ``directory`` (sorted by name)."""
    try:
        files = sorted(directory.glob("*.json"))
    except OSError as exc:
        raise EnvironmentProblem(f"cannot read {directory}: {exc}") from None
    if not files:
        raise RecipeError(f"no platform image records in {directory}",
                          hint="run `plan publish-platform --digests DIR` for each platform "
                          "first, and gather their DIRs here")
    out = []
    for f in files:
        try:
            doc = json.loads(f.read_text())
        except (OSError, ValueError) as exc:
            raise RecipeError(f"{f}: unreadable record: {exc}") from None
        out.append(PlatformRecord.from_json(doc, source=str(f)))
    return out


def assemble_index(manifests: Sequence[Descriptor], annotations: Mapping[str, str]) -> bytes:
    """The OCI index over per-platform ``manifests`` (sorted by platform, one each), in
    canonical JSON: byte for byte what ``build_index`` writes for the same images."""
    if not manifests:
        raise RecipeError("an index needs at least one manifest")
    by_platform: dict[Platform, Descriptor] = {}
    for d in manifests:
        if d.platform is None:
            raise RecipeError(f"manifest {d.digest} has no platform")
        if d.platform in by_platform and by_platform[d.platform].digest != d.digest:
            raise RecipeError(f"two different manifests for {d.platform}: "
                              f"{by_platform[d.platform].digest} and {d.digest}",
                              hint="the per-platform jobs built different inputs; rerun them")
        by_platform[d.platform] = d
    doc = {
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [by_platform[p].to_json() for p in sorted(by_platform)],
        "annotations": dict(annotations),
    }
    return canonical_json(doc)


@dataclass(frozen=True)
class MergedIndex:
    """One image step's index, ready to push to the repositories of ``tags``."""

    step: str
    index: bytes
    records: tuple[PlatformRecord, ...]  # in platform order
    tags: tuple[str, ...]
    arch_tags: bool

    @property
    def digest(self) -> str:
        return sha256_digest(self.index)


def merge_records(records: Iterable[PlatformRecord]) -> list[MergedIndex]:
    """Group records by step and assemble each index; every platform the step targets must
    be there, and the records must agree on tags, arch tags and annotations."""
    steps: dict[str, list[PlatformRecord]] = {}
    for r in records:
        steps.setdefault(r.step, []).append(r)
    out = []
    for step, group in sorted(steps.items()):
        first = group[0]
        for r in group[1:]:
            for what, a, b in (("tags", r.tags, first.tags),
                               ("arch_tags", r.arch_tags, first.arch_tags),
                               ("platforms", set(r.platforms), set(first.platforms)),
                               ("annotations", dict(r.annotations), dict(first.annotations))):
                if a != b:
                    raise RecipeError(
                        f"step '{step}': the {r.platform} and {first.platform} records "
                        f"disagree on {what}", step=step,
                        hint="every per-platform job must build the same commit of the plan")
        have = {r.platform for r in group}
        missing = [str(p) for p in first.platforms if p not in have]
        if missing:
            raise RecipeError(f"step '{step}': no record for {', '.join(missing)}", step=step,
                              hint="a per-platform job did not publish; its platforms would be "
                              "missing from the index, so nothing is pushed")
        extra = sorted(str(p) for p in have - set(first.platforms))
        if extra:
            raise RecipeError(f"step '{step}': records for {', '.join(extra)}, which the step "
                              "does not target", step=step)
        index = assemble_index([r.manifest for r in group], first.annotations)
        ordered = tuple(sorted(group, key=lambda r: r.platform))
        out.append(MergedIndex(step, index, ordered, first.tags, first.arch_tags))
    return out
