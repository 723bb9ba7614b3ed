"""The daemonless image backend: assemble per-platform OCI images from deps' outputs; write
and push them.

The image node's store entry *is* an OCI image layout (``oci/``), so a second run is a
cache hit and ``--output``/``--push`` just re-export the stored layout.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from crossplan.backends.oci import (
    ImageSpec,
    LayerEntry,
    LayerSpec,
    build_index,
    resolve_base,
    write_layout,
)
from crossplan.backends.oci.descriptor import sha256_digest
from crossplan.backends.oci.image import BuiltIndex, LayerKey
from crossplan.backends.oci.layers import Layer, build_layer, layer_encoding
from crossplan.backends.oci.reference import Reference
from crossplan.backends.oci.reload import read_layout_index
from crossplan.cache.leases import DOCS, LAYERS
from crossplan.cache.store import Entry, OutputFile, Store
from crossplan.errors import CrossplanError, RecipeError, StepFailed
from crossplan.executors.result import ImageResult
from crossplan.images.binaries import base_runtime, check_image_binaries
from crossplan.images.naming import group_tags, layout_ref, output_for, ref_name, tag_names
from crossplan.images.offline import is_offline, last_pushed, record_push, refuse
from crossplan.images.pin import base_pin, image_identity
from crossplan.images.protocol import LAYOUT_DIR, dep_entry
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import PlannedNode
from crossplan.platforms import Platform
from crossplan.recipes.models import CopySpec, ImageStep, Recipe

__all__ = ["OciBackend", "oci_pin"]

_SPOOL = ".layers"  # in the image node's work dir: layers too large to hold in memory


def oci_pin(recipe: Recipe, sid: str, step: ImageStep, platforms: tuple[Platform, ...], *,
            docs: Path | None = None) -> str:
    """What of the outside world an image depends on: the base pinned by digest, and git.
    ``docs``: the store's registry documents kept by digest (only a tag is asked anew)."""
    if step.base == "scratch":
        pin = "scratch"
    else:
        base = step.base
        if base.startswith(("oci:", "oci-archive:")):
            kind, _, rest = base.partition(":")
            base = f"{kind}:{(recipe.root / rest).resolve()}"
        if is_offline() and _from_registry(base):
            pin = _offline_pin(base, sid, recipe)
        else:
            bases = resolve_base(base, platforms, docs=docs)
            pin = ",".join(sorted({b.pinned or b.digest for b in bases.values()
                                   if b is not None}))
    # Annotations come from the recipe only (never the checkout's git metadata or path),
    # so the same tree gives the same index with or without .git, whatever the remote.
    rev, src = recipe.project.revision, recipe.project.source
    # The layers' encoding: the same inputs compressed otherwise are other bytes.
    return image_identity(backend="oci", base=pin, layers=layer_encoding(), revision=rev or "",
                          source=src or "")


def _pinned(pn: PlannedNode) -> str | None:
    """The registry base the node's key was made with (``name@sha256:...``, from
    ``oci_pin`` at planning): a tag moved since then must not change what is built."""
    base = base_pin(pn.components.get("toolchain"))
    return base if "@sha256:" in base and "," not in base else None


def _copy_entries(spec: CopySpec, entry: Entry, store: Store, step: str) -> list[LayerEntry]:
    files: list[OutputFile] = list(entry.files)
    prefix = ""
    if spec.src is not None:
        src = PurePosixPath(spec.src).as_posix().rstrip("/")
        files = [f for f in files if f.path == src or f.path.startswith(src + "/")]
        if not files:
            raise StepFailed(
                f"copy from '{spec.from_}': no output '{spec.src}'", step=step,
                hint="outputs are: " + ", ".join(f.path for f in entry.files),
            )
        single = len(files) == 1 and files[0].path == src
        prefix = str(PurePosixPath(src).parent) if single else src
        prefix = "" if prefix == "." else prefix
    out = []
    for f in files:
        rel = f.path[len(prefix):].lstrip("/") if prefix else f.path
        if spec.dest.endswith("/") or len(files) > 1:
            dest = str(PurePosixPath(spec.dest) / rel)
        else:
            dest = spec.dest
        mode = spec.mode if spec.mode is not None else f.mode
        if f.link is not None:
            out.append(LayerEntry(dest, type="symlink", linkname=f.link, mode=0o777))
        else:
            out.append(LayerEntry(dest, source=store.blob_path(f.digest), mode=mode))
    return out


class OciBackend:
    """Builds image nodes into OCI layouts itself (no daemon) and publishes them."""

    name = "oci"

    def __init__(self, recipe: Recipe, store: Store, source_date_epoch: int = 0, *,
                 offline: bool = False) -> None:
        self.recipe = recipe
        self.store = store
        self.sde = source_date_epoch
        self.offline = offline  # no registry: no base pull, pushes answered from records
        self._early: dict[LayerKey, Future[Layer]] = {}  # layers started by ``prepare``
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        # where a layer started early goes when too large to hold in memory (made when one
        # is): in the store's tmp/, named for this handle (swept if the process dies)
        self._early_spool = store.root / "tmp" / (
            f"{store.tmp_prefix('early-layers')}{os.getpid()}-{id(self):x}")

    def pin(self, sid: str, step: ImageStep, platforms: tuple[Platform, ...]) -> str:
        return oci_pin(self.recipe, sid, step, platforms, docs=self.store.root / DOCS)

    def build(
        self, pn: PlannedNode, workdir: Path, deps: Mapping[NodeId, Entry]
    ) -> tuple[str, ...]:
        """Write the image's OCI layout into ``workdir/oci``; returns the outputs to collect."""
        step = pn.step
        assert isinstance(step, ImageStep)
        sid = pn.id.step
        base = step.base
        if base.startswith(("oci:", "oci-archive:")):
            kind, _, rest = base.partition(":")
            base = f"{kind}:{(self.recipe.root / rest).resolve()}"
        if self.offline and _from_registry(base):
            refuse(f"the base {step.base} must be pulled from its registry to build this "
                   "image", step=sid, file=self.recipe.label_of(sid))
        pinned = _pinned(pn) if _from_registry(base) else None
        # the index the key names, not what the tag names now (known by the name given)
        bases = resolve_base(None if base == "scratch" else pinned or base, pn.platforms,
                             docs=self.store.root / DOCS, layers=self.store.root / LAYERS)
        if pinned is not None:
            given = str(Reference.parse(base))
            bases = {p: b and dataclasses.replace(b, name=given) for p, b in bases.items()}
        check_image_binaries(pn, deps, self.store, {
            p: base_runtime(step.base, bases.get(p)) for p in pn.platforms
        }, file=self.recipe.label_of(sid))
        specs: dict[Platform, ImageSpec] = {}
        for plat in pn.platforms:
            layers = self._copy_layers(pn, plat, deps)
            if layers is None:
                missing = next(c.from_ for c in step.copy_
                               if dep_entry(deps, c.from_, plat) is None)
                raise StepFailed(f"no output of '{missing}' for {plat}", step=sid)
            specs[plat] = ImageSpec(
                base=bases.get(plat), layers=layers, entrypoint=step.entrypoint, cmd=step.cmd,
                env=dict(step.env), workdir=step.workdir, user=step.user,
                labels=dict(step.labels), expose=step.expose, created=pn.components[
                    "source_date_epoch"],
            )
        rev, src = self.recipe.project.revision, self.recipe.project.source
        with self._lock:
            started = {k: self._early.pop(k) for k in self._early.keys() & _keys(specs)}
        built = build_index(specs, created=pn.components["source_date_epoch"], revision=rev,
                            source=src, started=started, spool=workdir / _SPOOL)
        name = ref_name(step)
        # Not flushed here: collecting the outputs moves each file into the store, which
        # flushes it there (one fsync per blob, not two).
        write_layout(built, workdir / LAYOUT_DIR, ref_name=name, platform_refs=(
            {p: f"{name}-{p.arch_variant}" for p in built.images} if name else None),
            sync=False)
        return (LAYOUT_DIR,)

    def prepare(self, pn: PlannedNode, deps: Mapping[NodeId, Entry]) -> None:
        """One of the image's dependencies was just built (others may still run): start
        compressing the copy layers of each platform whose dependencies are all here (the
        first platform's while the last one links; the last one's while the node waits for
        a worker, resolves its base and checks the binaries). The image node takes them by
        content (``build_index``'s ``started``); one whose inputs turn out otherwise is
        simply not used. Never raises: ``build`` reports errors."""
        step = pn.step
        assert isinstance(step, ImageStep)
        for plat in pn.platforms:
            try:
                layers = self._copy_layers(pn, plat, deps)
            except CrossplanError:
                continue
            mtime = pn.components["source_date_epoch"]
            for layer in layers or ():
                key = (layer.entries, mtime)
                with self._lock:
                    if layer.entries and key not in self._early:
                        self._early[key] = self._early_pool().submit(
                            build_layer, layer.entries, mtime=mtime, spool=self._early_spool)

    def _early_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            # a thread per CPU: the last platform's layer must not queue behind the first's
            self._pool = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="early-layer")
        return self._pool

    def close(self) -> None:
        """Layers started early and never used are not waited for (their files go)."""
        with self._lock:
            for future in self._early.values():
                future.cancel()
            self._early.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        shutil.rmtree(self._early_spool, ignore_errors=True)

    def _copy_layers(
        self, pn: PlannedNode, plat: Platform, deps: Mapping[NodeId, Entry]
    ) -> list[LayerSpec] | None:
        """The image's copy layers for ``plat`` from its deps' entries; None while one of
        those deps has no entry yet."""
        step = pn.step
        assert isinstance(step, ImageStep)
        sid = pn.id.step
        layers = []
        for c in step.copy_:
            dep = dep_entry(deps, c.from_, plat)
            if dep is None:
                return None
            what = f"COPY --from={c.from_}{' ' + c.src if c.src else ''} {c.dest}"
            layers.append(LayerSpec(
                tuple(_copy_entries(c, dep, self.store, sid)), what, comment=f"crossplan {sid}"
            ))
        return layers

    def publish(
        self, node: NodeId, entry: Entry, entries: Mapping[NodeId, Entry], *,
        output: str | None, push: bool, count: int,
        on_progress: Callable[[str], None] | None = None,
    ) -> ImageResult:
        """``--output`` exports the stored layout; ``--push`` pushes it to the step's tags
        (``on_progress`` hears "blobs 2/5, 1.2 MB uploaded to REPO" as they go)."""
        step = self.recipe.steps[node.step]
        assert isinstance(step, ImageStep)
        with tempfile.TemporaryDirectory(dir=self.store.root / "tmp") as tmp:
            self.store.materialize(entry, Path(tmp), read_only=True)  # read, exported, pushed
            layout = Path(tmp) / LAYOUT_DIR
            built = read_layout_index(layout)
            written: Path | None = None
            img_notes: list[str] = []
            if output:
                from crossplan.backends.oci import export  # the registry client (httpx)

                dest = output_for(output, node.step, count)
                res = export(built, dest, tags=list(tag_names(step)), arch_tags=step.arch_tags,
                             ref_name=layout_ref(node.step, step))
                written = res.path
                img_notes.append(f"wrote {res.destination}")  # with the ref that names it
            pushed: list[str] = []
            up_to_date = bool(step.tags)
            if push:
                if not step.tags:
                    raise RecipeError(
                        "--push needs `tags` on the image step", step=node.step,
                        file=self.recipe.label, hint='add tags = ["registry/repo:tag"]',
                    )
                if not self.offline:
                    from crossplan.backends.oci import push_index  # the registry client

                for repo, tags in group_tags(step.tags).items():
                    wanted = _wanted(built, repo, tags, step.arch_tags)
                    if self.offline:
                        img_notes.append(_offline_push(self.store.root, wanted, node.step,
                                                       self.recipe.label))
                    else:
                        pres = push_index(built, f"{repo}:{tags[0]}", tags=tags,
                                          arch_tags=step.arch_tags,
                                          on_progress=_progress(on_progress, repo))
                        for ref, digest in wanted.items():
                            record_push(self.store.root, ref, digest)
                        img_notes.append(pres.summary())
                        up_to_date = up_to_date and pres.up_to_date
                    pushed += [f"{repo}:{t}" for t in tags]
            return ImageResult(
                node.step, built.digest, {str(p): d for p, d in built.manifests.items()},
                written, tuple(pushed), push and up_to_date, tuple(img_notes),
            )


def _progress(
    say: Callable[[str], None] | None, repo: str
) -> Callable[[int, int, int], None] | None:
    if say is None:
        return None

    def on_blob(done: int, total: int, sent: int) -> None:
        say(f"blobs {done}/{total}, {sent / 1e6:.1f} MB uploaded to {repo}")

    return on_blob


def _keys(specs: Mapping[Platform, ImageSpec]) -> set[LayerKey]:
    return {(layer.entries, spec.created) for spec in specs.values() for layer in spec.layers}


def _from_registry(base: str) -> bool:
    return base not in ("", "scratch") and not base.startswith(("oci:", "oci-archive:"))


def _offline_pin(base: str, sid: str, recipe: Recipe) -> str:
    """Offline, a registry base is pinned only by the digest it names (as
    ``pull_base`` would pin it: ``name@digest``); an unpinned one needs its registry."""
    from crossplan.imageref import Reference

    ref = Reference.parse(base.removeprefix("docker://"))
    if not ref.digest:
        refuse(f"the base {base} is not pinned by digest: resolving it needs its registry",
               step=sid, file=recipe.label_of(sid))
    return f"{ref.name}@{ref.digest}"


def _wanted(built: BuiltIndex, repo: str, tags: list[str], arch_tags: bool) -> dict[str, str]:
    """Each reference a push points, with the digest it must name (as ``push_index``)."""
    wanted = {f"{repo}:{t}": built.digest for t in tags}
    if arch_tags:
        for plat, image in built.images.items():
            for t in tags:
                wanted[f"{repo}:{t}-{plat.arch_variant}"] = sha256_digest(image.manifest)
    return wanted


def _offline_push(store_root: Path, wanted: Mapping[str, str], step: str, file: str) -> str:
    """An offline push: every reference must already name its digest as this store last
    pushed it (not asked of the registry); anything else would have to write."""
    for ref, digest in wanted.items():
        seen = last_pushed(store_root, ref)
        if seen != digest:
            was = f"this store last pushed {seen} there" if seen else "never pushed from here"
            refuse(f"pushing to {ref} must write {digest} to the registry ({was})",
                   step=step, file=file)
    return (f"{', '.join(wanted)}: up to date as this store last pushed them "
            "(not asked of the registry: --offline)")
