"""``plan tags prune``: keep the newest N releases of a repository, delete the older tags.

A release is one image (index or manifest digest) with every tag naming it (``1.0`` and
``latest``) and their arch tags (``1.0-amd64``: a tag ``<T>-<arch><variant>`` whose ``<T>``
is also a tag); it is called by its highest version-ordered tag. Releases are ordered
newest first by their creation time: the index annotation
``org.opencontainers.image.created``, else the image config's ``created`` (the newest of an
index's platforms); a release without either is the oldest. Equal times (reproducible
builds share one ``SOURCE_DATE_EPOCH``) are ordered by that tag as a version: ``v1.10`` >
``1.9`` > ``1.9-rc.1``, and any version > a non-version tag like ``latest``, then by name.

Registries delete manifests by digest, which also removes every tag pointing at that
digest. So a digest that a kept release uses (its tags' digests and its index's platform
manifests) is never deleted: a tag pointing at such a digest is kept too, whatever its age.
The platform manifests of a deleted index go with it when nothing kept uses them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from crossplan.backends.oci.descriptor import sha256_digest
from crossplan.backends.oci.mediatypes import INDEX_TYPES
from crossplan.backends.oci.reference import Reference
from crossplan.backends.oci.registry import RegistryClient, RegistryError
from crossplan.errors import RecipeError
from crossplan.platforms import SUPPORTED, Platform

__all__ = [
    "ARCH_SUFFIXES",
    "PruneResult",
    "TagDecision",
    "TagInfo",
    "decide",
    "parse_time",
    "prune",
    "read_tags",
    "version_key",
]

ARCH_SUFFIXES = frozenset(Platform.parse(p).arch_variant for p in SUPPORTED)
_CREATED = "org.opencontainers.image.created"
# Supply-chain tags (referrers tag schema, cosign's signatures and attestations): never a
# release; deleted with the manifest they are about.
_ATTACHED = re.compile(r"^sha256-([0-9a-f]{64})(?:\.(?:sig|att|sbom))?$")
_VERSION = re.compile(r"^v?(\d+(?:\.\d+)*)(?:[-+_.]?(.*))?$")
_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


@dataclass(frozen=True)
class TagInfo:
    """What a tag points at: its digest, and for an index the platform manifests."""

    tag: str
    digest: str
    media_type: str
    created: str | None
    children: tuple[str, ...] = ()


@dataclass(frozen=True)
class TagDecision:
    tag: str
    digest: str
    action: Literal["keep", "delete"]
    reason: str
    release: str  # the release (main tag) this tag belongs to
    created: str | None

    def as_json(self) -> dict[str, Any]:
        return {"tag": self.tag, "digest": self.digest, "action": self.action,
                "reason": self.reason, "release": self.release, "created": self.created}


def parse_time(text: str | None) -> datetime | None:
    """RFC 3339 with any fraction (Go writes nanoseconds) and zone; None if unparsable."""
    m = _TIME.match(text or "")
    if not m:
        return None
    frac = (m.group(2) or ".0")[:7]
    zone = m.group(3) or "Z"
    try:
        return datetime.fromisoformat(m.group(1) + frac + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        return None


def _natural(text: str) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p)
                 for p in re.findall(r"\d+|[^\d.\-+_]+", text))


def version_key(tag: str) -> tuple[Any, ...]:
    """Semver-ish order: ``1.10`` > ``1.9`` > ``1.9-rc.1``; versions > other names."""
    m = _VERSION.match(tag)
    if not m:
        return (0, (), 0, _natural(tag), tag)
    core = tuple(int(x) for x in m.group(1).split("."))
    pre = m.group(2) or ""
    return (1, core, 0 if pre else 1, _natural(pre), tag)


def _release_of(tag: str, tags: set[str]) -> str:
    base, sep, suffix = tag.rpartition("-")
    return base if sep and suffix in ARCH_SUFFIXES and base in tags else tag


def decide(infos: Sequence[TagInfo], keep: int) -> tuple[list[TagDecision], list[str]]:
    """Pure: what to keep and delete; returns (decisions, manifest digests to delete) with
    indexes before the manifests they list."""
    by_tag = {i.tag: i for i in infos}
    groups: dict[str, list[TagInfo]] = {}  # main tag -> itself, then its arch tags
    for info in sorted(infos, key=lambda i: (i.tag != _release_of(i.tag, set(by_tag)), i.tag)):
        groups.setdefault(_release_of(info.tag, set(by_tag)), []).append(info)
    images: dict[str, list[str]] = {}  # a release: the main tags naming one image
    for main in groups:
        images.setdefault(by_tag[main].digest, []).append(main)
    lowest = datetime.min.replace(tzinfo=UTC)

    def name(digest: str) -> str:
        return max(images[digest], key=version_key)

    def newest_first(digest: str) -> tuple[Any, ...]:
        return (parse_time(by_tag[name(digest)].created) or lowest, version_key(name(digest)))

    releases = sorted(images, key=newest_first, reverse=True)
    protected: dict[str, str] = {}  # digest -> the kept tag that uses it
    for digest in releases[:keep]:
        for main in sorted(images[digest], key=lambda t: t != name(digest)):
            for info in groups[main]:
                for d in (info.digest, *info.children):
                    protected.setdefault(d, info.tag)
    decisions: list[TagDecision] = []
    doomed: list[TagInfo] = []
    for rank, digest in enumerate(releases):
        for main in sorted(images[digest], key=lambda t: (t != name(digest), t)):
            for info in groups[main]:
                arch = info.tag != main
                action: Literal["keep", "delete"] = "keep"
                if rank < keep:
                    reason = f"arch tag of {main}" if arch else f"newest {keep} (#{rank + 1})"
                elif info.digest in protected:
                    reason = f"its digest is used by kept tag {protected[info.digest]}"
                else:
                    reason = f"arch tag of {main}, older than the newest {keep}" if arch \
                        else f"older than the newest {keep}"
                    action = "delete"
                    doomed.append(info)
                decisions.append(TagDecision(info.tag, info.digest, action, reason, main,
                                             by_tag[main].created))
    digests = [i.digest for i in doomed if i.children] + [i.digest for i in doomed
                                                          if not i.children]
    digests += [c for i in doomed for c in i.children if c not in protected]
    return decisions, list(dict.fromkeys(digests))


def _config_created(client: RegistryClient, repo: str, manifest: bytes) -> str | None:
    doc = json.loads(manifest)
    config = doc.get("config") or {}
    if "digest" not in config:
        return None
    created = json.loads(client.get_blob(repo, str(config["digest"]))).get("created")
    return str(created) if created else None


def read_tags(client: RegistryClient, repo: str) -> list[TagInfo]:
    """Every tag of ``repo`` with its digest, children and creation time."""
    out = []
    for tag in sorted(client.list_tags(repo)):
        if _ATTACHED.match(tag):
            continue
        found = client.get_manifest(repo, tag)
        if found is None:
            continue  # deleted meanwhile
        data, media_type = found
        doc = json.loads(data)
        media_type = str(doc.get("mediaType") or media_type)
        children: tuple[str, ...] = ()
        created = None
        if media_type in INDEX_TYPES or "manifests" in doc:
            children = tuple(str(m["digest"]) for m in doc.get("manifests") or [])
            created = (doc.get("annotations") or {}).get(_CREATED)
            if created is None:
                times = []
                for child in children:
                    sub = client.get_manifest(repo, child)
                    if sub is not None and (t := _config_created(client, repo, sub[0])):
                        times.append(t)
                created = max(times, key=lambda t: parse_time(t) or datetime.min.replace(
                    tzinfo=UTC)) if times else None
        else:
            created = _config_created(client, repo, data)
        out.append(TagInfo(tag, sha256_digest(data), media_type, created, children))
    return out


def _attached(client: RegistryClient, repo: str, doomed: set[str]) -> list[str]:
    """The supply-chain manifests about ``doomed`` digests: referrers indexes and what they
    list, cosign's signature and attestation manifests."""
    out: list[str] = []
    for tag in sorted(client.list_tags(repo)):
        m = _ATTACHED.match(tag)
        if m is None or f"sha256:{m.group(1)}" not in doomed:
            continue
        found = client.get_manifest(repo, tag)
        if found is not None:
            doc = json.loads(found[0])
            out += [str(d["digest"]) for d in doc.get("manifests") or []]
            out.append(sha256_digest(found[0]))
    return list(dict.fromkeys(d for d in out if d not in doomed))


@dataclass(frozen=True)
class PruneResult:
    repository: str
    keep: int
    dry_run: bool
    decisions: tuple[TagDecision, ...]
    manifests: tuple[str, ...]  # digests deleted (or that would be)
    remaining: tuple[str, ...]  # tags left after the deletes (all tags on a dry run)

    @property
    def deleted_tags(self) -> list[str]:
        return [d.tag for d in self.decisions if d.action == "delete"]

    def as_json(self) -> dict[str, Any]:
        return {"repository": self.repository, "keep": self.keep, "dry_run": self.dry_run,
                "tags": [d.as_json() for d in self.decisions],
                "delete": self.deleted_tags, "manifests": list(self.manifests),
                "remaining": list(self.remaining)}


def prune(repository: str, keep: int, *, dry_run: bool = True,
          client: RegistryClient | None = None) -> PruneResult:
    """Plan (and unless ``dry_run``, perform) the deletes for ``repository`` (no tag)."""
    ref = Reference.parse(repository)
    if ref.tag or ref.digest:
        raise RecipeError(f"'{repository}' names a tag or digest; give the repository only",
                          hint=f"e.g. plan tags prune {ref.name} --keep {keep}")
    if keep < 1:
        raise RecipeError("--keep must be at least 1")
    reg = client or RegistryClient(ref.registry)
    try:
        infos = read_tags(reg, ref.repository)
        decisions, digests = decide(infos, keep)
        digests += _attached(reg, ref.repository, set(digests))
        remaining = [i.tag for i in infos]
        if not dry_run and digests:
            for digest in digests:
                try:
                    reg.delete_manifest(ref.repository, digest)
                except RegistryError as exc:
                    if exc.status in (405, 501):
                        exc.hint = ("the registry does not allow deletes; for docker-registry "
                                    "set storage.delete.enabled: true")
                    raise
            remaining = sorted(reg.list_tags(ref.repository))
        return PruneResult(ref.name, keep, dry_run, tuple(decisions), tuple(digests),
                           tuple(remaining))
    finally:
        if client is None:
            reg.close()
