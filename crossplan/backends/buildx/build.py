"""Build strategies: one multi-platform build, or per-platform builds joined by imagetools.

Two entry points: :meth:`Builder.build_layout` leaves an OCI layout on disk (the store
entry of an image node) and :meth:`Builder.push` pushes every tag (with the registry cache).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from crossplan.backends.buildx.caps import Capabilities
from crossplan.backends.buildx.invoke import BuildRequest, Buildx
from crossplan.backends.buildx.layouts import merge_layouts, normalize_layout, unpack_layout
from crossplan.backends.oci.descriptor import platform_from_json, sha256_digest
from crossplan.backends.oci.mediatypes import INDEX_TYPES
from crossplan.backends.oci.reference import Reference, is_loopback
from crossplan.backends.oci.registry import RegistryClient
from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.platforms import Platform
from crossplan.recipes.models import BuildxConfig

__all__ = [
    "BuildJob",
    "Builder",
    "CachePlan",
    "NeedsPush",
    "Pushed",
    "Strategy",
    "cache_plan",
    "choose_strategy",
    "split_tag",
]

Strategy = Literal["multi", "per-platform"]


@dataclass(frozen=True)
class BuildJob:
    """One image to build: the context (holding ``Dockerfile``), platforms and policy."""

    step: str
    context: Path
    platforms: tuple[Platform, ...]
    config: BuildxConfig
    log: Path
    tags: tuple[str, ...] = ()
    arch_tags: bool = False
    source_date_epoch: int = 0
    echo: bool = False
    local_cache_dir: Path | None = None
    file: str | None = None  # the recipe, for error messages


@dataclass(frozen=True)
class CachePlan:
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pushed:
    """What a push left in the registry."""

    index_digest: str
    manifests: dict[Platform, str]
    tags: tuple[str, ...]
    strategy: Strategy
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


class NeedsPush(EnvironmentProblem):
    """The builder cannot leave a multi-platform result on this machine: push it instead."""


def choose_strategy(config: BuildxConfig, caps: Capabilities, platforms: Sequence[Platform],
                    *, step: str = "") -> Strategy:
    """``auto``: one build for every platform where the builder can; else one per platform."""
    if config.strategy == "per-platform":
        return "per-platform"
    if config.strategy == "multi" and not caps.multi_platform and len(platforms) > 1:
        raise EnvironmentProblem(
            f"[buildx] strategy = \"multi\" but the {caps.driver} driver without the containerd "
            "image store builds one platform at a time", step=step,
            hint='use strategy = "auto" or "per-platform", or enable the containerd image store '
            '({"features": {"containerd-snapshotter": true}} in /etc/docker/daemon.json)',
        )
    return "multi" if caps.multi_platform or len(platforms) == 1 else "per-platform"


def split_tag(ref: str) -> tuple[str, str]:
    """``localhost:5000/a/b:1.0`` -> (``localhost:5000/a/b``, ``1.0``); no tag -> ``latest``."""
    head, _, last = ref.rpartition("/")
    name, sep, tag = last.partition(":")
    repo = f"{head}/{name}" if head else name
    return repo, tag if sep else "latest"


def _suffixed(ref: str, suffix: str) -> str:
    if not suffix:
        return ref
    repo, tag = split_tag(ref.split("@", 1)[0])
    return f"{repo}:{tag}-{suffix}"


def cache_plan(
    config: BuildxConfig, caps: Capabilities, *, push: bool, tags: Sequence[str],
    suffix: str = "", local_dir: Path | None = None, step: str = "",
) -> CachePlan:
    """``--cache-from/--cache-to`` for ``[buildx] cache``. The registry cache is read by every
    build and written by pushes; where the driver can't export it, inline cache instead."""
    mode = config.cache
    warnings: list[str] = []
    if mode == "none":
        return CachePlan()
    if mode in ("registry", "local") and not caps.cache_export:
        warnings.append(
            f'[buildx] cache = "{mode}": the {caps.driver} driver without the containerd image '
            "store cannot export build cache; falling back to inline cache (stored in the "
            "pushed image, used by the next build)"
        )
        mode = "inline"
    if mode == "registry":
        if not config.cache_ref:
            raise RecipeError(
                '[buildx] cache = "registry" needs cache_ref', step=step,
                hint='add cache_ref = "registry/repo/buildcache" to [buildx]',
            )
        ref = _suffixed(config.cache_ref, suffix)
        return CachePlan(
            (f"type=registry,ref={ref}",),
            (f"type=registry,ref={ref},mode=max",) if push else (), tuple(warnings),
        )
    if mode == "local":
        base = Path(config.cache_ref) if config.cache_ref else local_dir
        if base is None:
            raise RecipeError('[buildx] cache = "local" needs cache_ref (a directory)', step=step)
        where = base / suffix if suffix else base
        cache_from = (f"type=local,src={where}",) if (where / "index.json").exists() else ()
        return CachePlan(cache_from, (f"type=local,dest={where},mode=max",), tuple(warnings))
    cache_from = (f"type=registry,ref={_suffixed(tags[0], suffix)}",) if tags else ()
    return CachePlan(cache_from, ("type=inline",) if push else (), tuple(warnings))


class Builder:
    """Drives buildx for one builder whose capabilities are known."""

    def __init__(self, buildx: Buildx, caps: Capabilities) -> None:
        self.buildx = buildx
        self.caps = caps

    def _request(self, job: BuildJob, platforms: tuple[Platform, ...], output: str,
                 meta: Path, cache: CachePlan, tags: tuple[str, ...] = ()) -> BuildRequest:
        return BuildRequest(
            context=job.context, platforms=platforms, output=output, metadata_file=meta,
            tags=tags, cache_from=cache.cache_from, cache_to=cache.cache_to,
            build_args={"SOURCE_DATE_EPOCH": str(job.source_date_epoch)},
        )

    def build_layout(
        self, job: BuildJob, dest: Path, scratch: Path
    ) -> tuple[str, Strategy, list[str]]:
        """Build every platform into the OCI layout ``dest``; returns (index digest, strategy,
        warnings). Without OCI export (docker driver, classic image store) only a single
        platform can be built locally (``--load``); several raise :class:`NeedsPush`."""
        strategy = choose_strategy(job.config, self.caps, job.platforms, step=job.step)
        warnings: list[str] = []
        if not self.caps.oci_export:
            if len(job.platforms) > 1:
                raise self.needs_push(job)
            return self._load_and_save(job, dest, scratch), strategy, warnings
        if strategy == "multi":
            cache = cache_plan(job.config, self.caps, push=False, tags=job.tags,
                               local_dir=job.local_cache_dir, step=job.step)
            warnings += cache.warnings
            tar = scratch / "image.tar"
            self.buildx.build(
                self._request(job, job.platforms, f"type=oci,dest={tar}",
                              scratch / "metadata.json", cache),
                step=job.step, log=job.log, echo=job.echo,
            )
            unpack_layout(tar, dest)
            tar.unlink()
            return normalize_layout(dest), strategy, warnings
        parts: dict[Platform, Path] = {}
        for p in job.platforms:
            cache = cache_plan(job.config, self.caps, push=False, tags=job.tags,
                               suffix=p.arch_variant, local_dir=job.local_cache_dir,
                               step=job.step)
            warnings += [w for w in cache.warnings if w not in warnings]
            tar = scratch / f"image-{p.slug}.tar"
            self.buildx.build(
                self._request(job, (p,), f"type=oci,dest={tar}",
                              scratch / f"metadata-{p.slug}.json", cache),
                step=job.step, log=job.log, echo=job.echo,
            )
            parts[p] = unpack_layout(tar, scratch / f"part-{p.slug}")
            tar.unlink()
        return merge_layouts(parts, dest), strategy, warnings

    def needs_push(self, job: BuildJob) -> NeedsPush:
        plats = ", ".join(str(p) for p in job.platforms)
        return NeedsPush(
            f"the {self.caps.driver} driver with the classic image store cannot keep a "
            f"multi-platform result ({plats}) on this machine: it can neither load it nor "
            "export an OCI archive", step=job.step, file=job.file,
            hint="add --push (each platform is built and pushed, then joined into one index "
            "with `docker buildx imagetools create`), or enable the containerd image store "
            '({"features": {"containerd-snapshotter": true}} in daemon.json), or build one '
            "platform with --platform",
        )

    def _load_and_save(self, job: BuildJob, dest: Path, scratch: Path) -> str:
        from crossplan.backends.buildx.engine import Engine

        tag = f"crossplan-build/{job.step.lower()}:{scratch.name.lower()[-20:] or 'tmp'}"
        cache = cache_plan(job.config, self.caps, push=False, tags=job.tags,
                           local_dir=job.local_cache_dir, step=job.step)
        self.buildx.build(
            self._request(job, job.platforms, "load", scratch / "metadata.json", cache, (tag,)),
            step=job.step, log=job.log, echo=job.echo,
        )
        engine = Engine()
        try:
            tar = scratch / "saved.tar"
            with tar.open("wb") as f:
                for chunk in engine.client.images.get(tag).save(named=True):
                    f.write(chunk)
            unpack_layout(tar, dest)
            tar.unlink()
        finally:
            engine.remove_image(tag)
            engine.close()
        return normalize_layout(dest)

    # -- push ------------------------------------------------------------------------------

    def push(self, job: BuildJob, scratch: Path) -> Pushed:
        """Build and push every tag; arch tags point at each platform's manifest."""
        if not job.tags:
            raise RecipeError(
                "--push needs `tags` on the image step", step=job.step, file=job.file,
                hint='add tags = ["registry/repo:tag"]',
            )
        strategy = choose_strategy(job.config, self.caps, job.platforms, step=job.step)
        warnings: list[str] = []
        notes: list[str] = []
        reported: object = None  # the digest buildx's --metadata-file names
        oci = ",oci-mediatypes=true" if self.caps.oci_export else ""
        if strategy == "multi":
            cache = cache_plan(job.config, self.caps, push=True, tags=job.tags,
                               local_dir=job.local_cache_dir, step=job.step)
            warnings += cache.warnings
            meta = self.buildx.build(
                self._request(job, job.platforms, f"type=registry{oci}",
                              scratch / "metadata.json", cache, job.tags),
                step=job.step, log=job.log, echo=job.echo,
            )
            reported = meta.get("containerimage.digest")
            notes.append(f"pushed {', '.join(job.tags)} in one multi-platform build")
        else:
            repo, tag0 = split_tag(job.tags[0])
            sources = []
            for p in job.platforms:
                cache = cache_plan(job.config, self.caps, push=True, tags=job.tags,
                                   suffix=p.arch_variant, local_dir=job.local_cache_dir,
                                   step=job.step)
                warnings += [w for w in cache.warnings if w not in warnings]
                if self.caps.push_by_digest:
                    output = (f"type=image,name={repo},push-by-digest=true,name-canonical=true,"
                              f"push=true{oci}")
                    tags: tuple[str, ...] = ()
                else:  # the docker driver cannot push by digest: stage under the arch tag
                    output, tags = f"type=registry{oci}", (f"{repo}:{tag0}-{p.arch_variant}",)
                meta = self.buildx.build(
                    self._request(job, (p,), output, scratch / f"metadata-{p.slug}.json",
                                  cache, tags),
                    step=job.step, log=job.log, echo=job.echo,
                )
                digest = meta.get("containerimage.digest")
                if not isinstance(digest, str):
                    raise EnvironmentProblem(
                        f"buildx did not report the digest of the {p} image", step=job.step,
                        hint=f"see {job.log}",
                    )
                sources.append(f"{repo}@{digest}")
            self.buildx.imagetools_create(job.tags, sources, step=job.step, log=job.log,
                                          echo=job.echo)
            notes.append(
                f"pushed {len(sources)} per-platform images, joined by `docker buildx "
                f"imagetools create` as {', '.join(job.tags)}"
            )
        index_digest, manifests = read_pushed(job.tags[0])
        if strategy == "multi" and reported and reported != index_digest:
            warnings.append(f"buildx reported {reported} but {job.tags[0]} names {index_digest}")
        tags_out = list(job.tags)
        if job.arch_tags:
            tags_out += tag_arch(job.tags, manifests)
        return Pushed(index_digest, manifests, tuple(tags_out), strategy, tuple(warnings),
                      tuple(notes))


def _client(registry: str) -> RegistryClient:
    return RegistryClient(registry, insecure=is_loopback(registry))


def read_pushed(ref: str) -> tuple[str, dict[Platform, str]]:
    """(digest of what ``ref`` names, platform -> manifest digest)."""
    parsed = Reference.parse(ref)
    with _client(parsed.registry) as reg:
        found = reg.get_manifest(parsed.repository, parsed.ref)
        if found is None:
            raise EnvironmentProblem(f"{ref} is not in the registry after the push",
                                     hint="check the registry's log")
        data, media_type = found
        doc = json.loads(data)
        manifests: dict[Platform, str] = {}
        if media_type in INDEX_TYPES or "manifests" in doc:
            for m in doc.get("manifests", []):
                if m.get("platform", {}).get("architecture") not in (None, "unknown"):
                    manifests[platform_from_json(m["platform"])] = m["digest"]
        else:
            config = json.loads(reg.get_blob(parsed.repository, doc["config"]["digest"]))
            manifests[platform_from_json(config)] = sha256_digest(data)
    return sha256_digest(data), manifests


def tag_arch(tags: Sequence[str], manifests: dict[Platform, str]) -> list[str]:
    """Point ``<tag>-<arch><variant>`` at each platform's manifest (a carbon copy, no index)."""
    written: list[str] = []
    for ref in tags:
        parsed = Reference.parse(ref)
        repo, tag = split_tag(ref)
        with _client(parsed.registry) as reg:
            for p, digest in manifests.items():
                found = reg.get_manifest(parsed.repository, digest)
                if found is None:
                    raise EnvironmentProblem(f"manifest {digest} missing from {repo}")
                reg.put_manifest(parsed.repository, f"{tag}-{p.arch_variant}", *found)
                written.append(f"{repo}:{tag}-{p.arch_variant}")
    return written
