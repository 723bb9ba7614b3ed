"""The emulated mode: the naive path users start from, measured through buildx.

The step's compile stage as ``plan dockerfile --naive`` renders it (``FROM <toolchain image>``
on the TARGET platform, so every RUN executes under QEMU), built with ``docker buildx build
--no-cache --platform <target> --output type=local``. The stage's cache mounts are dropped:
with ``--no-cache`` and no mounts every round compiles from cold caches, like the host modes.
The toolchain image is prepared (made or checked) before the first round, untimed. The RUN
step's own time is read from buildx's plain progress, so the rest is buildx's overhead.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

from crossplan.backends.buildx.binfmt import binfmt_fix, can_execute, read_binfmt
from crossplan.backends.buildx.invoke import BuildRequest, Buildx, build_argv, classify_failure
from crossplan.backends.dockerfile import CompileStage, DockerfileSpec, compile_stage, render
from crossplan.backends.elf import check_elf
from crossplan.backends.toolchains.c import CToolchain
from crossplan.backends.toolchains.discover import toolchain_for
from crossplan.backends.toolchains.go import GoToolchain, binary_name
from crossplan.bench.images import ImageMaker, no_image_problem
from crossplan.bench.modes import BenchContext, Job
from crossplan.bench.report import Prep, Sample
from crossplan.errors import CrossplanError, EnvironmentProblem, RecipeError
from crossplan.platforms import Platform
from crossplan.probe.digest import tree_digest
from crossplan.recipes.models import CStep, GoStep, ImageStep, RustStep, Step

__all__ = ["EmulatedMode", "naive_dockerfile", "run_step_seconds"]

_NOT_ELF = (".a", ".h", ".hpp", ".pc", ".cmake", ".txt", ".json", ".tar", ".gz")


def run_step_seconds(progress: str, stage: str) -> float | None:
    """Seconds of ``stage``'s RUN vertex in buildx ``--progress plain`` output (``#9 [build-x
    4/4] RUN ...`` ... ``#9 DONE 85.3s``), or None when absent."""
    ids = set(re.findall(
        rf"^#(\d+) \[(?:\S+ )?{re.escape(stage)} \d+/\d+\] RUN ", progress, re.MULTILINE))
    total = None
    for vid in ids:
        done = re.findall(rf"^#{vid} DONE ([0-9.]+)s", progress, re.MULTILINE)
        if done:
            total = (total or 0.0) + float(done[-1])
    return total


def naive_dockerfile(project: str, stage: CompileStage, platform: Platform) -> str:
    """The naive Dockerfile of one compile stage, its outputs copied into a scratch image."""
    img = ImageStep.model_validate({"kind": "image", "copy": [{"from": stage.step, "dest": "/"}]})
    spec = DockerfileSpec(project, "bench", img, (platform,), (stage,))
    return render(spec, variant="naive")


@dataclasses.dataclass(frozen=True)
class _Prepared:
    context: Path
    stage: CompileStage
    image: str


class EmulatedMode:
    """Builds a job inside a target-platform container under QEMU, through buildx."""

    name = "emulated"

    def __init__(self, ctx: BenchContext, *, images: ImageMaker | None = None,
                 buildx: Buildx | None = None) -> None:
        self.ctx = ctx
        self.buildx = buildx or Buildx()
        self.images = images or ImageMaker(ctx.store_dir, ctx.base, buildx=self.buildx,
                                           clock=ctx.clock, log_dir=ctx.logs)
        self._jobs: dict[Job, _Prepared] = {}

    def prepare(self, job: Job) -> list[Prep]:
        ctx = self.ctx
        sid, platform = job.step, job.platform
        step = ctx.step(sid)
        if platform == ctx.build:
            raise EnvironmentProblem(f"{platform} is the build platform: nothing is emulated",
                                     step=sid, hint="bench a foreign --platform")
        if step.deps:
            raise RecipeError("the emulated mode benches steps without deps", step=sid,
                              hint="bench the deps themselves, or a step that has none")
        if not can_execute(platform, ctx.build, read_binfmt(), ()):
            raise EnvironmentProblem(f"this machine cannot run {platform} binaries", step=sid,
                                     hint=binfmt_fix([platform]))
        step = self._as_host_builds(sid, step, platform)
        prep: list[Prep] = []
        image = ctx.images.get(sid) or step.toolchain_image
        if image:
            t0 = ctx.clock()
            self.images.check(image, platform, sid)
            prep.append(Prep(f"toolchain image {image} (named; checked)", self.name,
                             ctx.clock() - t0, reused=True))
        else:
            kind, version = self._managed(sid, step, platform)
            image, made = self.images.toolchain(kind, version, platform)  # type: ignore[arg-type]
            prep.append(made)
        src = ctx.recipe.root / (step.src or ".")
        binary, vendor = _binary(step, src)
        stage = compile_stage(sid, step, (platform,), image=image, binary=binary, vendor=vendor,
                              emulate=True)
        stage = dataclasses.replace(stage, caches=())
        context = ctx.workdir / "emulated" / f"{sid}-{platform.slug}"
        if context.exists():
            shutil.rmtree(context)
        inputs = context / "src" / sid
        _copy_inputs(src, step.exclude, inputs)
        if ctx.toolchain_cache == "warm":
            package = step.package if isinstance(step, GoStep) else "."
            image, warmed = self.images.warm(image, stage, platform, src=inputs,
                                             package=package)
            stage = dataclasses.replace(stage, image=image)
            if warmed is not None:
                prep.append(warmed)
        (context / "Dockerfile").write_text(naive_dockerfile(ctx.recipe.project.name, stage,
                                                             platform))
        (context / ".dockerignore").write_text("Dockerfile\n.dockerignore\n")
        self._jobs[job] = _Prepared(context, stage, image)
        return prep

    def _as_host_builds(self, sid: str, step: Step, platform: Platform) -> Step:
        """The C step as the host runs it: ``compiler = "auto"`` becomes what the host picks
        (zig, else gcc), so the emulated build runs the same compiler; a multi-word ``build``
        is an argv on the host (``["make", "hello"]``), so it becomes one shell line (the
        compile stage runs each element as its own line)."""
        if not isinstance(step, CStep):
            return step
        update: dict[str, object] = {}
        if len(step.build) > 1:
            update["build"] = (shlex.join(step.build),)
        if step.compiler == "auto":
            tc = toolchain_for(step, self.ctx.recipe.toolchains, self.ctx.store_dir,
                               self.ctx.environ)
            if isinstance(tc, CToolchain):
                kind = tc.cc(platform).kind
                update["compiler"] = "zig" if kind == "zig" else kind
        return step.model_copy(update=update) if update else step

    def _managed(self, sid: str, step: Step, platform: Platform) -> tuple[str, str]:
        """(go|zig, version): the host's version, for a wheel of the target's arch."""
        pins = self.ctx.recipe.toolchains
        if isinstance(step, GoStep):
            if pins.go:
                return "go", pins.go
            tc = toolchain_for(step, pins, self.ctx.store_dir, self.ctx.environ)
            assert isinstance(tc, GoToolchain)
            words = tc.version().split()  # go version go1.27.3 linux/amd64
            return "go", (words[2] if len(words) > 2 else "").removeprefix("go")
        if isinstance(step, CStep) and step.compiler == "zig":
            if pins.zig:
                return "zig", pins.zig
            tc = toolchain_for(step, pins, self.ctx.store_dir, self.ctx.environ)
            assert isinstance(tc, CToolchain)
            zig = tc.cc(platform).cc[0]
            done = subprocess.run([zig, "version"], capture_output=True, text=True, timeout=60,
                                  check=False)
            if done.returncode != 0 or not done.stdout.strip():
                raise EnvironmentProblem(f"cannot run `{zig} version`", step=sid,
                                         hint=done.stderr.strip()[-300:] or None)
            return "zig", done.stdout.strip()
        raise no_image_problem(sid, step.kind, platform)

    def measure(self, job: Job, round_: int) -> Sample:
        ctx = self.ctx
        prepared = self._jobs[job]
        log = ctx.logs / f"emulated-{job.step}-{job.platform.slug}-{round_}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=ctx.workdir, prefix="emulated-out-") as tmp:
            out = Path(tmp)
            req = BuildRequest(context=prepared.context, platforms=(job.platform,),
                               output=f"type=local,dest={out / 'fs'}",
                               metadata_file=out / "meta.json")
            argv = build_argv(req, self.buildx.docker)
            argv.insert(3, "--no-cache")
            t0 = ctx.clock()
            code, text = self.buildx.runner(argv, log=log)
            seconds = ctx.clock() - t0
            compile_s = run_step_seconds(text, prepared.stage.name)
            try:
                if code != 0:
                    raise classify_failure(text, step=job.step, log=log,
                                           platforms=(job.platform,))
                self._verify(out / "fs", prepared.stage, job.platform)
            except CrossplanError as exc:
                return Sample(job.step, str(job.platform), self.name, round_, seconds,
                              compile_s, ok=False, error=_explain(exc, text),
                              toolchain=prepared.image)
        return Sample(job.step, str(job.platform), self.name, round_, seconds, compile_s,
                      toolchain=prepared.image)

    def close(self) -> None:
        self.images.close()

    def _verify(self, fs: Path, stage: CompileStage, platform: Platform) -> None:
        for rel in stage.outputs:
            path = fs / rel
            if not path.exists():
                raise RecipeError(f"the emulated build left no '{rel}'", step=stage.step)
            if path.is_file() and not rel.endswith(_NOT_ELF):
                check_elf(path, platform, step=stage.step)


def _explain(exc: CrossplanError, output: str) -> str:
    text = exc.render()
    if re.search(r": (not found|No such file or directory)\b", output):
        text += ("\nhint: the toolchain image lacks a program the build runs (e.g. make): "
                 "pass --base IMAGE with it, e.g. --base 'crossplan-bench/debian:bookworm-{arch}'"
                 " (scripts/bench-debian-image.sh)")
    return text


def _binary(step: Step, src: Path) -> tuple[str | None, bool]:
    """(Go binary / Rust bin name, Go vendor dir?), read from the step's sources."""
    if isinstance(step, GoStep):
        return binary_name(step, src), (src / "vendor").is_dir()
    if isinstance(step, RustStep) and not step.bin:
        try:
            name = tomllib.loads((src / "Cargo.toml").read_text())["package"]["name"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return None, False
        return str(name), False
    return None, False


def _copy_inputs(src: Path, exclude: tuple[str, ...], dest: Path) -> None:
    """The step's input tree (what its key hashes: ignores and ``exclude`` honoured)."""
    tree = tree_digest(src.resolve(), exclude=exclude)
    dest.mkdir(parents=True, exist_ok=True)
    for f in tree.files:
        target = dest / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.link is not None:
            target.symlink_to(f.link)
        else:
            shutil.copyfile(tree.root / f.path, target)
            target.chmod(0o755 if f.executable else 0o644)
