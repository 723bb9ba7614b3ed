"""Attestations of pushed images attached once: a push whose tags were already up to date
does not attach the same attestations again (a no-op `--push` writes nothing), and an
offline push attaches nothing (images/offline.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from crossplan.cache.store import Entry, Store
from crossplan.executors.result import ImageResult, RunResult
from crossplan.imageref import Reference
from crossplan.images.offline import last_pushed, record_push, refuse
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import Plan

if TYPE_CHECKING:
    from crossplan.attest import AttestOptions

__all__ = ["attest_once"]

Attach = Callable[[Plan, RunResult, Mapping[NodeId, Entry], Store, str | None, "AttestOptions"],
                  RunResult]


def _fingerprint(p: Plan, image: ImageResult, result: RunResult, settings: AttestOptions,
                 repo: str) -> str:
    """What the attached documents are made of: the image, every node key of the run (the
    provenance's materials are among them), the settings, the signing key and the version."""
    doc = {"repo": repo, "index": image.index_digest, "manifests": image.manifests,
           "keys": sorted(f"{s.node}={s.key}" for s in result.steps),
           "sbom": settings.sbom, "provenance": settings.provenance,
           "key": settings.key.public_pem.decode() if settings.key else None,
           "sde": p.source_date_epoch, "crossplan": importlib.metadata.version("crossplan")}
    return "sha256:" + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def attest_once(p: Plan, result: RunResult, entries: Mapping[NodeId, Entry], store: Store,
                output: str | None, settings: AttestOptions, *, offline: bool,
                attach: Attach) -> RunResult:
    """``attach`` (running._attest) for each image, but not to the repositories where this
    store already attached the same documents to tags that were up to date."""
    skip: dict[str, tuple[str, ...]] = {}
    prints: dict[str, dict[str, str]] = {}
    for image in result.images:
        repos = list(dict.fromkeys(Reference.parse(r).name for r in image.pushed))
        prints[image.step] = {r: _fingerprint(p, image, result, settings, r) for r in repos}
        done = image.up_to_date and all(
            last_pushed(store.root, f"attestations:{r}") == f
            for r, f in prints[image.step].items())
        if done:
            skip[image.step] = image.pushed
        elif offline and repos:
            refuse(f"attaching attestations to {', '.join(repos)} must write to the registry "
                   "(this store has not attached these)", step=image.step, file=p.recipe.label)
    local = dataclasses.replace(result, images=tuple(
        dataclasses.replace(i, pushed=()) if i.step in skip else i for i in result.images))
    attached = attach(p, local, entries, store, output, settings)
    note = "attestations already attached (as this store last attached them to these tags)"
    images = []
    for before, after in zip(result.images, attached.images, strict=True):
        if before.step in skip:
            images.append(dataclasses.replace(after, pushed=before.pushed,
                                              notes=(*after.notes, note)))
        else:
            for repo, fp in prints[before.step].items():
                record_push(store.root, f"attestations:{repo}", fp)
            images.append(after)
    return dataclasses.replace(attached, images=tuple(images))
