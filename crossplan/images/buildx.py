"""The buildx image backend: build contexts, the image node's build, pushes.

An image node built by buildx is stored like the daemonless backend's: an OCI layout under
``oci/`` (buildx ``--output type=oci``), plus the ``Dockerfile`` it came from, so a second
``plan run`` is ``cached`` and ``--output`` re-exports the stored layout. ``--push`` runs
buildx again with ``--push`` and the registry cache (a no-op rebuild when the local build
cache is warm; after ``docker buildx prune`` it imports the registry cache).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from crossplan.backends.buildx.build import Builder, BuildJob, NeedsPush
from crossplan.backends.buildx.caps import Capabilities
from crossplan.backends.buildx.engine import Engine
from crossplan.backends.buildx.invoke import Buildx
from crossplan.backends.dockerfile import (
    DockerfileSpec,
    Variant,
    compile_stage,
    render,
)
from crossplan.backends.toolchains.go import binary_name
from crossplan.cache.store import Entry, Store
from crossplan.errors import EnvironmentProblem, RecipeError, StepFailed
from crossplan.executors.result import ImageResult
from crossplan.executors.workdir import InputChanged
from crossplan.hashing import copy_hashing
from crossplan.images.binaries import check_image_binaries
from crossplan.images.buildx_base import buildx_base_runtimes
from crossplan.images.buildx_pin import buildx_pin, check_emulation
from crossplan.images.naming import layout_ref, output_for, tag_names
from crossplan.images.protocol import LAYOUT_DIR, dep_entry
from crossplan.planner.container import container_compiled
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import PlannedNode
from crossplan.planner.tree import TreeDigest
from crossplan.platforms import Platform
from crossplan.probe.digest import tree_digest
from crossplan.recipes.models import GoStep, ImageStep, Recipe, RustStep

__all__ = ["META", "BuildxBackend", "dockerfile_spec", "predicted_files", "write_context"]

META = "buildx.json"  # platforms, strategy, index digest; or why only a push can build it


def _binary(recipe: Recipe, sid: str) -> tuple[str | None, bool]:
    """(Go binary / Rust bin name, Go vendor dir?) read from the step's sources."""
    step = recipe.steps[sid]
    src = recipe.root / (step.src or ".")
    if isinstance(step, GoStep):
        return binary_name(step, src), (src / "vendor").is_dir()
    if isinstance(step, RustStep) and not step.bin:
        try:
            name = tomllib.loads((src / "Cargo.toml").read_text())["package"]["name"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return None, False
        return str(name), False
    return None, False


def dockerfile_spec(
    recipe: Recipe, sid: str, platforms: tuple[Platform, ...],
    files: Mapping[str, tuple[str, ...] | None],
) -> DockerfileSpec:
    """What ``render`` needs for image step ``sid``: compile stages when it compiles in
    buildx, else only the host copies (``files``: each copied step's output paths)."""
    step = recipe.steps[sid]
    if not isinstance(step, ImageStep):
        raise RecipeError(f"step '{sid}' is not an image step", file=recipe.label, step=sid)
    stages = []
    for s in container_compiled(recipe).get(sid, ()):
        dep = recipe.steps[s]
        binary, vendor = _binary(recipe, s)
        image = dep.toolchain_image
        if not image:
            raise RecipeError(
                f"step '{s}' has no toolchain_image (needed by compile = \"container\")",
                file=recipe.label, step=s, hint='add toolchain_image = "..."',
            )
        try:
            stages.append(compile_stage(s, dep, platforms, image=image, binary=binary,
                                        vendor=vendor))
        except RecipeError as exc:
            raise RecipeError(exc.message, file=recipe.label, step=s, hint=exc.hint) from None
    return DockerfileSpec(recipe.project.name, sid, step, platforms, tuple(stages), dict(files))


def predicted_files(recipe: Recipe, sid: str) -> dict[str, tuple[str, ...] | None]:
    """Output paths of the steps an image copies from, as declared (before any build)."""
    step = recipe.steps[sid]
    assert isinstance(step, ImageStep)
    out: dict[str, tuple[str, ...] | None] = {}
    for c in step.copy_:
        dep = recipe.steps[c.from_]
        if dep.kind in ("go", "rust"):
            binary, _ = _binary(recipe, c.from_)
            out[c.from_] = (binary,) if binary else None
        else:
            out[c.from_] = tuple(dep.outputs) or None
    return out


def _copy_tree(tree: TreeDigest, dest: Path) -> None:
    for f in tree.files:
        src = tree.root / f.path if tree.root.is_dir() else tree.root
        target = dest / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.link is not None:
            os.symlink(f.link, target)
        else:
            if copy_hashing(src, target) != f.digest:  # the key hashed other bytes
                raise InputChanged(f.path, "its content differs from when it was planned")
            os.chmod(target, 0o755 if f.executable else 0o644)


def _stamp(root: Path, epoch: int) -> None:
    """Every file and dir at SOURCE_DATE_EPOCH: COPY keeps mtimes, so layers stay stable."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            os.utime(Path(dirpath) / name, (epoch, epoch), follow_symlinks=False)
    os.utime(root, (epoch, epoch))


def write_context(
    ctx: Path, recipe: Recipe, sid: str, platforms: tuple[Platform, ...],
    deps: Mapping[NodeId, Entry], store: Store, *, sources: Mapping[str, TreeDigest | None]
    | None = None, source_date_epoch: int = 0, variant: Variant = "cross",
) -> str:
    """Lay out a build context that plain ``docker buildx build`` accepts; returns the
    Dockerfile text (also written to ``ctx/Dockerfile``)."""
    step = recipe.steps[sid]
    assert isinstance(step, ImageStep)
    compiled = container_compiled(recipe).get(sid, ())
    host_steps = {c.from_ for c in step.copy_ if c.from_ not in compiled}
    for s in compiled:
        host_steps |= set(recipe.steps[s].deps)
    files: dict[str, tuple[str, ...] | None] = {}
    for dep in sorted(host_steps):
        for p in platforms:
            entry = dep_entry(deps, dep, p)
            if entry is None:
                raise StepFailed(f"no output of '{dep}' for {p}", step=sid)
            store.materialize(entry, ctx / "out" / p.arch_variant / dep)
            files.setdefault(dep, tuple(f.path for f in entry.files))
    for s in compiled:
        tree = (sources or {}).get(s)
        dep_step = recipe.steps[s]
        if tree is None and dep_step.src is not None:
            tree = tree_digest((recipe.root / dep_step.src).resolve(), exclude=dep_step.exclude)
        (ctx / "src" / s).mkdir(parents=True, exist_ok=True)
        if tree is not None:
            _copy_tree(tree, ctx / "src" / s)
    text = render(dockerfile_spec(recipe, sid, platforms, files), variant=variant)
    (ctx / "Dockerfile").write_text(text)
    (ctx / ".dockerignore").write_text("Dockerfile\n.dockerignore\n")
    _stamp(ctx, source_date_epoch)
    return text


@dataclass(frozen=True)
class _Run:
    caps: Capabilities
    builder: Builder


class BuildxBackend:
    """Builds (and pushes) the image steps whose backend is buildx."""

    name = "buildx"

    def __init__(self, recipe: Recipe, store: Store, source_date_epoch: int = 0,
                 environ: Mapping[str, str] | None = None, *, offline: bool = False) -> None:
        self.recipe = recipe
        self.store = store
        self.sde = source_date_epoch
        self.offline = offline  # --offline: a push (a build with --push) is refused
        self.environ = dict(os.environ if environ is None else environ)
        self._run: _Run | None = None
        self._lock = threading.Lock()

    def pin(self, sid: str, step: ImageStep, platforms: tuple[Platform, ...]) -> str:
        return buildx_pin(self.recipe, sid, step, platforms)

    @property
    def echo(self) -> bool:
        return self.environ.get("CROSSPLAN_BUILDX_PROGRESS", "") == "plain"

    def detect(self) -> _Run:
        """Capabilities of the engine and builder (once per run)."""
        with self._lock:
            if self._run is None:
                engine = Engine(self.environ)
                try:
                    engine.ping()
                    containerd = engine.containerd_store()
                finally:
                    engine.close()
                buildx = Buildx()
                caps = buildx.capabilities(containerd)
                self._run = _Run(caps, Builder(buildx, caps))
            return self._run

    def _job(self, sid: str, step: ImageStep, platforms: tuple[Platform, ...], ctx: Path,
             log: Path) -> BuildJob:
        return BuildJob(
            step=sid, context=ctx, platforms=platforms, config=self.recipe.buildx, log=log,
            tags=step.tags, arch_tags=step.arch_tags, source_date_epoch=self.sde,
            echo=self.echo, file=self.recipe.label,
            local_cache_dir=self.store.root / "buildx-cache" / self.recipe.project.name / sid,
        )

    def build(
        self, pn: PlannedNode, workdir: Path, deps: Mapping[NodeId, Entry]
    ) -> tuple[str, ...]:
        """The image node's build: context -> buildx -> OCI layout in ``workdir/oci``."""
        step = pn.step
        assert isinstance(step, ImageStep)
        sid = pn.id.step
        check_image_binaries(pn, deps, self.store,
                             buildx_base_runtimes(pn, self.store.root / "tmp"),
                             file=self.recipe.label_of(sid))
        run = self.detect()
        check_emulation(self.recipe, sid, pn.platforms, builder_platforms=run.caps.platforms)
        ctx = workdir / "context"
        sources = pn.sources or None
        text = write_context(ctx, self.recipe, sid, pn.platforms, deps, self.store,
                             sources=sources, source_date_epoch=self.sde)
        (workdir / "Dockerfile").write_text(text)
        log = workdir / ".crossplan.log"
        scratch = workdir / "scratch"
        scratch.mkdir()
        job = self._job(sid, step, pn.platforms, ctx, log)
        meta: dict[str, object] = {"platforms": [str(p) for p in pn.platforms],
                                   "driver": run.caps.driver}
        outputs: tuple[str, ...] = (META, "Dockerfile", LAYOUT_DIR)
        try:
            built = run.builder.build_layout(job, workdir / LAYOUT_DIR, scratch)
            digest, strategy, warnings = built
            meta.update(index=digest, strategy=strategy, warnings=warnings)
        except NeedsPush as exc:
            meta["deferred"] = {"message": exc.message, "hint": exc.hint or ""}
            outputs = (META, "Dockerfile")
        except StepFailed as exc:
            keep = self.store.root / "logs" / f"{sid}.buildx.log"
            shutil.copyfile(log, keep)
            raise StepFailed(exc.message, step=sid, file=self.recipe.label,
                             log_tail=exc.log_tail, hint=f"full log: {keep}") from None
        (workdir / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        with log.open("a") as f:
            f.write(f"# crossplan: {json.dumps(meta, sort_keys=True)}\n")
        shutil.rmtree(ctx, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
        return outputs

    def prepare(self, pn: PlannedNode, deps: Mapping[NodeId, Entry]) -> None:
        """buildx builds every platform in one buildkit call: nothing to start early."""

    def close(self) -> None:
        """Nothing was started early."""

    def publish(
        self, node: NodeId, entry: Entry, entries: Mapping[NodeId, Entry], *,
        output: str | None, push: bool, count: int,
    ) -> ImageResult:
        """``--output`` re-exports the stored layout; ``--push`` pushes through buildx."""
        from crossplan.backends.oci import export
        from crossplan.backends.oci.reload import read_layout_index

        step = self.recipe.steps[node.step]
        assert isinstance(step, ImageStep)
        with tempfile.TemporaryDirectory(dir=self.store.root / "tmp") as tmp:
            self.store.materialize(entry, Path(tmp))
            meta = json.loads((Path(tmp) / META).read_text())
            platforms = tuple(Platform.parse(p) for p in meta["platforms"])
            deferred = meta.get("deferred")
            if deferred and (output or not push):
                raise EnvironmentProblem(
                    deferred["message"], file=self.recipe.label, step=node.step,
                    hint=deferred["hint"] + ("; --output needs a local result" if output else ""),
                )
            notes: list[str] = [f"warning: {w}" for w in meta.get("warnings", [])]
            written: Path | None = None
            index, manifests = str(meta.get("index", "")), {}
            if not deferred:
                built = read_layout_index(Path(tmp) / LAYOUT_DIR)
                index = built.digest
                manifests = {str(p): d for p, d in built.manifests.items()}
                if output:
                    dest = output_for(output, node.step, count)
                    res = export(built, dest, tags=list(tag_names(step)),
                                 arch_tags=step.arch_tags, ref_name=layout_ref(node.step, step))
                    written = res.path
                    notes.append(f"wrote {res.destination}")  # with the ref that names it
        if not push:
            return ImageResult(node.step, index, manifests, written, (), False, tuple(notes))
        if self.offline:
            from crossplan.images.offline import refuse

            refuse("a buildx push builds again with --push and writes to the registry",
                   step=node.step, file=self.recipe.label)
        pushed = self.push(node, platforms, entries)
        if index and pushed.index_digest != index:
            notes.append(f"note: the pushed index {pushed.index_digest} differs from the "
                         f"stored build {index} (timestamps or cache metadata)")
        return ImageResult(
            node.step, pushed.index_digest, pushed.manifests, written, pushed.pushed, False,
            (*notes, *pushed.notes),
        )

    def push(self, node: NodeId, platforms: tuple[Platform, ...],
             entries: Mapping[NodeId, Entry]) -> ImageResult:
        """Build again with ``--push`` and the registry cache; tag arch tags."""
        step = self.recipe.steps[node.step]
        assert isinstance(step, ImageStep)
        run = self.detect()
        check_emulation(self.recipe, node.step, platforms,
                        builder_platforms=run.caps.platforms)
        log = self.store.root / "logs" / f"{node.step}.push.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        with tempfile.TemporaryDirectory(dir=self.store.root / "tmp", prefix="buildx-push-") as tmp:
            ctx = Path(tmp) / "context"
            write_context(ctx, self.recipe, node.step, platforms, entries, self.store,
                          source_date_epoch=self.sde)
            scratch = Path(tmp) / "scratch"
            scratch.mkdir()
            job = self._job(node.step, step, platforms, ctx, log)
            try:
                pushed = run.builder.push(job, scratch)
            except StepFailed as exc:
                raise StepFailed(exc.message, step=node.step, file=self.recipe.label,
                                 log_tail=exc.log_tail, hint=f"full log: {log}") from None
        notes = [*pushed.notes, f"buildx log: {log}"]
        notes += [f"warning: {w}" for w in pushed.warnings]
        return ImageResult(
            node.step, pushed.index_digest, {str(p): d for p, d in pushed.manifests.items()},
            None, pushed.tags, False, tuple(notes),
        )


