"""The registry side of the native-runner fan-out, over the existing OCI client.

``push_platform``: one per-platform job's image (a single-platform ``BuiltIndex``) pushed by
digest to every repository of the step's tags (blobs, the manifest, no tag), described by
``PlatformRecord``s. ``publish_merged``: the merged index pushed where those manifests are,
then its tags (and arch tags): tags last, so a tag never names an incomplete index.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from crossplan.backends.oci import BuiltIndex, Reference, RegistryClient, push_index
from crossplan.backends.oci.descriptor import sha256_digest
from crossplan.backends.oci.mediatypes import OCI_INDEX, OCI_MANIFEST
from crossplan.errors import EnvironmentProblem
from crossplan.images.naming import group_tags
from crossplan.platforms import Platform
from crossplan.release.merge import MergedIndex, PlatformRecord

__all__ = ["PublishedIndex", "publish_merged", "push_platform"]

ClientFactory = Callable[[str], RegistryClient]


def push_platform(built: BuiltIndex, *, step: str, tags: Sequence[str], arch_tags: bool,
                  platforms: Sequence[Platform]) -> list[PlatformRecord]:
    """Push ``built``'s blobs and manifests (and its own index) by digest, no tags, to each
    repository of ``tags``; one record per platform it holds."""
    if not tags:
        raise EnvironmentProblem(f"step '{step}' has no tags to push to")
    for repo in group_tags(tuple(tags)):
        push_index(built, Reference.parse(repo))
    annotations = json.loads(built.index).get("annotations") or {}
    return [PlatformRecord(step, image.descriptor, tuple(platforms), tuple(tags), arch_tags,
                           annotations) for image in built.images.values()]


@dataclass(frozen=True)
class PublishedIndex:
    step: str
    repository: str  # REGISTRY/REPO
    digest: str
    tags: tuple[str, ...]  # every tag that now names the index or an arch manifest
    tags_written: tuple[str, ...]  # those that did not already

    def as_json(self) -> dict[str, object]:
        return {"step": self.step, "repository": self.repository, "index_digest": self.digest,
                "tags": list(self.tags), "tags_written": list(self.tags_written)}

    def summary(self) -> str:
        written = ", ".join(self.tags_written) or "none (up to date)"
        return f"{self.repository}@{self.digest}: tags written: {written}"


def _default_client(registry: str) -> RegistryClient:
    return RegistryClient(registry)


def publish_merged(merged: MergedIndex, client: ClientFactory = _default_client
                   ) -> list[PublishedIndex]:
    """Push ``merged`` to each repository of its tags: check that every platform's manifest
    is there (pushed by ``push_platform``), put the index by digest, then the tags that do
    not already name it (arch tags: ``TAG-<arch><variant>`` -> that platform's manifest)."""
    out = []
    for repo, tags in group_tags(merged.tags).items():
        ref = Reference.parse(repo)
        with client(ref.registry) as reg:
            manifests: dict[Platform, tuple[bytes, str]] = {}
            for r in merged.records:
                found = reg.get_manifest(ref.repository, r.manifest.digest)
                if found is None:
                    raise EnvironmentProblem(
                        f"{repo}@{r.manifest.digest} ({r.platform}, step '{merged.step}') is "
                        "not in the registry",
                        hint="run `plan publish-platform` for that platform first (same "
                        "registry, same commit)")
                manifests[r.platform] = (found[0], found[1] or OCI_MANIFEST)
            wanted = {t: (merged.index, OCI_INDEX) for t in tags}
            if merged.arch_tags:
                for p, doc in manifests.items():
                    wanted.update({f"{t}-{p.arch_variant}": doc for t in tags})
            if not reg.has_manifest(ref.repository, merged.digest):
                reg.put_manifest(ref.repository, merged.digest, merged.index, OCI_INDEX)
            written = []
            for tag, (data, media_type) in wanted.items():
                current = reg.get_manifest(ref.repository, tag)
                if current is None or sha256_digest(current[0]) != sha256_digest(data):
                    reg.put_manifest(ref.repository, tag, data, media_type)
                    written.append(tag)
        out.append(PublishedIndex(merged.step, ref.name, merged.digest, tuple(wanted),
                                  tuple(written)))
    return out
