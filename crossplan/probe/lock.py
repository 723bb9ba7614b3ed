"""Locked bases: ``plan lock`` resolves every base and toolchain image of a recipe to an
index digest and a manifest digest per platform (``lock``); planning with a ``plan.lock``
(``apply_lock``) pins each registry base to its locked digest (so the lock enters the keys)
and fails, naming base, platform and step, when a platform a step needs is not locked or
is gone from the base, instead of building without it."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossplan.backends.oci.descriptor import platform_from_json, sha256_digest
from crossplan.backends.oci.layout import REF_NAME, parse_layout_ref
from crossplan.backends.oci.mediatypes import INDEX_TYPES
from crossplan.backends.oci.registry import RegistryClient
from crossplan.errors import RecipeError
from crossplan.imageref import Reference
from crossplan.network import is_offline
from crossplan.planner.graph import ANY
from crossplan.planner.plan import expand_for, target_platforms
from crossplan.probe.lockfile import (
    LOCK_NAME,
    Change,
    Locked,
    LockFile,
    diff,
    read_lock,
    write_lock,
)
from crossplan.recipes.models import ImageStep, Recipe

__all__ = ["LockResult", "apply_lock", "lock", "require_lock", "resolve_image"]

Reader = Callable[[str], bytes]  # digest -> bytes (manifests and blobs alike)


@dataclass(frozen=True)
class LockResult:
    path: Path
    lock: LockFile
    changes: tuple[Change, ...]
    warnings: tuple[str, ...]
    written: bool
    sysroots: tuple[str, ...] = ()  # sysroots.lock: one line per (sysroot, architecture)

    def as_json(self) -> dict[str, Any]:
        return {"ok": True, "file": str(self.path), "written": self.written,
                "lock": self.lock.as_json(), "changes": [c.as_json() for c in self.changes],
                "warnings": list(self.warnings), "sysroots": list(self.sysroots)}


def _platforms(top: bytes, read: Reader, depth: int = 0) -> dict[str, str]:
    doc = json.loads(top)
    out: dict[str, str] = {}
    if doc.get("mediaType") in INDEX_TYPES or "manifests" in doc:
        for e in doc.get("manifests") or []:
            if e.get("mediaType") in INDEX_TYPES and depth < 4:
                for k, v in _platforms(read(e["digest"]), read, depth + 1).items():
                    out.setdefault(k, v)
            elif isinstance(e.get("platform"), dict):
                plat = str(platform_from_json(e["platform"]))
                if plat != "unknown/unknown":  # buildkit attestation manifests
                    out.setdefault(plat, str(e["digest"]))
        return out
    if "config" in doc:
        config = json.loads(read(str(doc["config"]["digest"])))
        if isinstance(config, dict) and "os" in config:
            out[str(platform_from_json(config))] = sha256_digest(top)
    return out


def _layout_reader(kind: str, path: Path) -> Reader:
    def read_name(name: str) -> bytes:
        try:
            if kind == "oci":
                return (path / name).read_bytes()
            with tarfile.open(path) as tar:
                for m in tar:
                    if m.name.removeprefix("./") == name and (fh := tar.extractfile(m)):
                        return fh.read()
            raise FileNotFoundError(name)
        except (OSError, tarfile.TarError) as exc:
            raise RecipeError(f"cannot read {name} from {kind}:{path}: {exc}",
                              hint="is it a complete OCI layout?") from None
    return read_name


def resolve_image(ref: str, root: Path) -> Locked:
    """What ``ref`` (a registry reference, ``oci:DIR[:REF]`` or ``oci-archive:FILE[:REF]``,
    relative to ``root``) names now: its digest and each platform's manifest."""
    layout = parse_layout_ref(ref)
    if layout is not None:
        read_name = _layout_reader(layout.kind, root / layout.path)
        entries = json.loads(read_name("index.json")).get("manifests", [])
        if layout.ref is not None:
            entries = [e for e in entries if (e.get("annotations") or {}).get(REF_NAME)
                       == layout.ref]
        else:
            entries = [e for e in entries if e.get("mediaType") in INDEX_TYPES] or entries
        if len(entries) != 1:
            raise RecipeError(f"{ref}: expected one image in index.json, found {len(entries)}",
                              hint="name one with ':REF'")
        digest = str(entries[0]["digest"])

        def read(d: str) -> bytes:
            return read_name("blobs/" + d.replace(":", "/", 1))

        return Locked(digest, _platforms(read(digest), read))
    parsed = Reference.parse(ref)
    with RegistryClient(parsed.registry) as client:
        found = client.get_manifest(parsed.repository, parsed.ref)
        if found is None:
            raise RecipeError(f"image {ref} not found", hint="check the name and tag")

        def read_reg(d: str) -> bytes:
            got = client.get_manifest(parsed.repository, d)
            return got[0] if got is not None else client.get_blob(parsed.repository, d)

        return Locked(sha256_digest(found[0]), _platforms(found[0], read_reg))


def _images(recipe: Recipe) -> tuple[dict[str, str], dict[str, str]]:
    """(base -> first step using it, toolchain image -> first step using it)."""
    bases: dict[str, str] = {}
    tools: dict[str, str] = {}
    for sid, step in recipe.steps.items():
        if isinstance(step, ImageStep) and step.base != "scratch":
            bases.setdefault(step.base, sid)
        if step.toolchain_image:
            tools.setdefault(step.toolchain_image, sid)
    return bases, tools


def lock(recipe: Recipe, *, update: bool = False,
         resolve: Callable[[str, Path], Locked] = resolve_image) -> LockResult:
    """Write ``plan.lock`` beside the recipe: new images resolved, the others kept (all of
    them re-resolved with ``update``). Warns when a step needs a platform its base lacks."""
    path = recipe.root / LOCK_NAME
    old = read_lock(path)
    bases, tools = _images(recipe)
    keep_b = dict(old.bases) if old and not update else {}
    keep_t = dict(old.toolchain_images) if old and not update else {}
    new = LockFile(
        {b: keep_b.get(b) or resolve(b, recipe.root) for b in sorted(bases)},
        {t: keep_t.get(t) or resolve(t, recipe.root) for t in sorted(tools)},
    )
    changes = tuple(diff(old, new))
    written = old is None or new.as_json() != old.as_json()
    if written:
        write_lock(path, new)
    return LockResult(path, new, changes, tuple(_missing(recipe, new, None)), written)


def _missing(recipe: Recipe, lockfile: LockFile, platforms: list[str] | tuple[str, ...] | str
             | None) -> list[str]:
    out = []
    graph = expand_for(recipe, target_platforms(recipe, platforms))
    for n in graph:
        step = recipe.steps[n.step]
        if n.platform != ANY or not isinstance(step, ImageStep) or step.base == "scratch":
            continue
        entry = lockfile.bases.get(step.base)
        for p in graph.nodes[n]["platforms"]:
            if entry is not None and str(p) not in entry.platforms:
                have = ", ".join(sorted(entry.platforms)) or "none"
                out.append(f"base {step.base} has no {p} image (step '{n.step}' needs it; "
                           f"it has {have})")
    return out


def require_lock(recipe: Recipe) -> None:
    """``--locked`` without plan.lock: fine when nothing needs pinning, else exit 2."""
    bases, tools = _images(recipe)
    first = next(iter({**bases, **tools}.items()), None)
    if first is not None:
        image, sid = first
        raise RecipeError(f"--locked: there is no {LOCK_NAME} to pin {image}",
                          file=recipe.label_of(sid), step=sid,
                          hint=f"run `plan lock` and commit {LOCK_NAME}")


def apply_lock(recipe: Recipe, platforms: list[str] | tuple[str, ...] | str | None = None,
               *, resolve: Callable[[str, Path], Locked] = resolve_image) -> Recipe:
    """``recipe`` with its registry bases and toolchain images pinned to ``plan.lock``'s
    digests (unchanged without a lock). RecipeError, naming base, platform and step, when
    an image is not locked, a needed platform is not locked, or the locked image is gone."""
    path = recipe.root / LOCK_NAME
    lockfile = read_lock(path)
    if lockfile is None:
        return recipe
    bases, tools = _images(recipe)
    for image, sid in [*bases.items(), *tools.items()]:
        table = lockfile.bases if image in bases else lockfile.toolchain_images
        if image not in table:
            raise RecipeError(f"{image} is not in {LOCK_NAME}", file=recipe.label_of(sid),
                              step=sid, hint="run `plan lock` to add it")
    problems = _missing(recipe, lockfile, platforms)
    if problems:
        raise RecipeError(problems[0], file=str(path),
                          hint="pick a base that has it or drop the platform; if the base "
                               "provides it now: plan lock --update")
    for base in bases if not is_offline() else ():  # offline: the lock is trusted as is
        _still_there(base, lockfile.bases[base], recipe, resolve)
    steps = {}
    for sid, step in recipe.steps.items():
        update: dict[str, str] = {}
        if isinstance(step, ImageStep) and step.base in bases and parse_layout_ref(
                step.base) is None:
            update["base"] = f"{Reference.parse(step.base).name}@{lockfile.bases[step.base].digest}"
        if step.toolchain_image and parse_layout_ref(step.toolchain_image) is None:
            locked = lockfile.toolchain_images[step.toolchain_image]
            update["toolchain_image"] = (
                f"{Reference.parse(step.toolchain_image).name}@{locked.digest}")
        steps[sid] = step.model_copy(update=update) if update else step
    return recipe.model_copy(update={"steps": steps})


def _still_there(base: str, locked: Locked, recipe: Recipe,
                 resolve: Callable[[str, Path], Locked]) -> None:
    """The locked index must still exist (a layout must still hold it): else say which
    platforms are gone."""
    if parse_layout_ref(base) is None:
        ref = Reference.parse(base)
        with RegistryClient(ref.registry) as client:
            if client.has_manifest(ref.repository, locked.digest):
                return
    now = resolve(base, recipe.root)
    if now.digest == locked.digest:
        return
    gone = sorted(set(locked.platforms) - set(now.platforms))
    what = (f"no longer has {', '.join(gone)}" if gone else
            f"changed: {locked.digest} is gone, it names {now.digest} now")
    raise RecipeError(
        f"base {base} {what} (plan.lock pins {locked.digest})", file=str(recipe.root / LOCK_NAME),
        hint="plan lock --update shows what changed" + (
            f"; then pick a base with {', '.join(gone)} or drop it" if gone else ""))
