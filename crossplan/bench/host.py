"""The cross and native modes: the real crossplan path, ``plan`` + ``run`` of one step.

Each round gets a fresh temporary store, so the action cache, the stat memo and the
toolchain caches under ``<store>/toolcache`` (GOCACHE, zig's global and local caches, cargo's
target dir) all start empty. Only the managed toolchains' unpacked wheels are shared (a
symlink to the persistent store's ``toolchains/``, or ``CROSSPLAN_TOOLCHAINS_DIR``):
installing a compiler is not building. ``CROSSPLAN_TOOLCACHE_DIR`` (a shared toolchain cache)
is ignored and the remote cache is off: nothing may be substituted.
Native is the same with the build platform as the target: the baseline.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from crossplan import api
from crossplan.backends.toolchains.discover import toolchain_for
from crossplan.backends.toolchains.managed import install
from crossplan.backends.toolchains.rust import RustToolchain
from crossplan.bench.modes import BenchContext, Job, sub_recipe
from crossplan.bench.report import Prep, Sample
from crossplan.bench.toolcache import warm_toolcache
from crossplan.errors import CrossplanError, RecipeError
from crossplan.recipes.models import Recipe, RustStep

__all__ = ["HostMode"]


class HostMode:
    """``cross``: target = the job's platform; ``native``: the build platform."""

    def __init__(self, ctx: BenchContext, name: str = "cross") -> None:
        if name not in ("cross", "native"):
            raise ValueError(name)
        self.ctx = ctx
        self.name = name
        self._recipes: dict[str, Recipe] = {}
        self._environ: dict[str, dict[str, str]] = {}
        self._warm: dict[Job, Path] = {}
        self._toolchain: dict[Job, str] = {}

    def prepare(self, job: Job) -> list[Prep]:
        ctx = self.ctx
        t0 = ctx.clock()
        recipe = self._recipes.setdefault(job.step, sub_recipe(ctx.recipe, job.step))
        step = recipe.steps[job.step]
        if step.kind not in ("go", "rust", "c", "shell"):
            raise RecipeError(f"'{job.step}' is a {step.kind} step: bench builds compile steps",
                              step=job.step, hint="pick go, rust, c (or shell) steps")
        prep: list[Prep] = []
        if recipe.toolchains.go or recipe.toolchains.zig:
            install(recipe.toolchains, ctx.store_dir)  # once; shared by every round
        env = self._environ.setdefault(job.step, self._pin_rustc(recipe, job))
        # Plan once in a scratch store: a missing toolchain or std is an EnvironmentProblem
        # (a Skip) now rather than a failed round; it also names the compiler.
        with tempfile.TemporaryDirectory(dir=ctx.workdir, prefix="probe-") as tmp:
            store = self._fresh_store(Path(tmp))
            p = api.plan(recipe, [str(job.platform)], cache_dir=store, environ=env)
            node = next(n for n in p.nodes.values() if n.id.step == job.step)
            fingerprint = str(node.components.get("toolchain") or "")
            self._toolchain[job] = fingerprint.splitlines()[0] if fingerprint else step.kind
        if ctx.toolchain_cache == "warm" and step.kind != "shell":
            name = f"{self.name}-{job.step}-{job.platform.slug}"
            dest = ctx.workdir / "warm" / name / "toolcache"
            if dest.exists():
                shutil.rmtree(dest.parent)
            tc = toolchain_for(step, recipe.toolchains, ctx.store_dir, env)
            src = recipe.root / (step.src or ".")
            warm = warm_toolcache(tc, step, job.platform, dest, build=ctx.build, environ=env,
                                  src=src)
            if warm:
                self._warm[job] = dest
        prep.append(Prep(f"{self.name}: toolchain check and warm caches for {job.step} "
                         f"({job.platform})" if job in self._warm else
                         f"{self.name}: toolchain check for {job.step} ({job.platform})",
                         self.name, ctx.clock() - t0))
        return prep

    def _pin_rustc(self, recipe: Recipe, job: Job) -> dict[str, str]:
        """Rust: every host mode uses the rustc the cross builds select (Debian's rustc has
        the arm64 std, rustup's may not): the same compiler for the native baseline."""
        env = dict(self.ctx.environ)
        step = recipe.steps[job.step]
        if not isinstance(step, RustStep):
            return env
        tc = toolchain_for(step, recipe.toolchains, self.ctx.store_dir, env)
        if not isinstance(tc, RustToolchain):
            return env
        foreign = [p for p in self.ctx.targets if p != self.ctx.build]
        for target in ([job.platform] if self.name == "cross" else []) + foreign:
            try:
                env["RUSTC"] = str(tc.select(target, step.libc or "gnu").rustc)
                return env
            except CrossplanError:
                continue
        return env

    def _fresh_store(self, root: Path) -> Path:
        store = root / "store"
        store.mkdir(parents=True)
        managed = self.ctx.store_dir / "toolchains"
        if managed.is_dir():
            (store / "toolchains").symlink_to(managed.resolve())
        return store

    def measure(self, job: Job, round_: int) -> Sample:
        ctx = self.ctx
        recipe = self._recipes[job.step]
        env = self._environ[job.step]
        with tempfile.TemporaryDirectory(dir=ctx.workdir, prefix=f"{self.name}-") as tmp:
            store = self._fresh_store(Path(tmp))
            warm = self._warm.get(job)
            if warm is not None:
                shutil.copytree(warm, store / "toolcache", symlinks=True)
            t0 = ctx.clock()
            try:
                p = api.plan(recipe, [str(job.platform)], cache_dir=store, environ=env)
                result = api.run(p, api.RunOptions(cache_dir=store, targets=[job.step],
                                                   environ=env, cache_mode="off"))
            except CrossplanError as exc:
                seconds = ctx.clock() - t0
                message = self._keep_logs(store, job, round_, exc.render())
                return Sample(job.step, str(job.platform), self.name, round_, seconds,
                              ok=False, error=message, toolchain=self._toolchain[job])
            seconds = ctx.clock() - t0
            error = next((s.error for s in result.steps if s.error), None)
            if error is not None or not result.ok:
                error = self._keep_logs(store, job, round_, error or "")
        compile_s = min(seconds, sum(s.seconds for s in result.steps if s.status == "built"))
        return Sample(job.step, str(job.platform), self.name, round_, seconds, compile_s,
                      ok=result.ok, error=error, toolchain=self._toolchain[job])


    def _keep_logs(self, store: Path, job: Job, round_: int, error: str) -> str:
        """A failed round's logs, moved out of its temporary store into the kept log dir
        (``error`` then names where they are)."""
        logs = store / "logs"
        if not logs.is_dir():
            return error
        dest = self.ctx.logs / f"{self.name}-{job.step}-{job.platform.slug}-{round_}"
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(logs, dest, symlinks=True)
        return error.replace(str(logs), str(dest)) + f"\nlogs: {dest}"
