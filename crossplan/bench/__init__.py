"""``plan bench``: the same steps built cross-compiled, emulated and native, timed side by side.

A pipeline like the rest of crossplan: ``recipe -> schedule -> prepare (untimed) -> rounds
(cold caches, interleaved) -> BenchReport -> table | JSON | CSV | chart``::

    report = bench("examples/hello/full.toml", BenchOptions(platforms="linux/arm64", repeat=3))
    print(report.groups[0].ratios["emulated/cross"])
    write_chart(report, "bench.svg")
"""

from __future__ import annotations

import os
import platform as _pyplatform
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossplan import api
from crossplan.bench.chart import write_chart
from crossplan.bench.images import DEFAULT_BASE, no_base_problem
from crossplan.bench.modes import BenchContext, Mode, ToolchainCache
from crossplan.bench.report import (
    MODES,
    BenchReport,
    Prep,
    Sample,
    Skip,
    load_report,
    summarize,
)
from crossplan.bench.rounds import prepare_all, run_rounds, schedule
from crossplan.cache.store import default_store_dir
from crossplan.errors import RecipeError
from crossplan.platforms import Platform, build_platform, parse_platforms
from crossplan.recipes.models import Recipe

__all__ = [
    "MODES",
    "BenchOptions",
    "BenchReport",
    "Prep",
    "Sample",
    "Skip",
    "bench",
    "cold_environ",
    "load_report",
    "write_chart",
]

COMPILE_KINDS = ("go", "rust", "c")
COLD_SCRUB = ("CROSSPLAN_TOOLCACHE_DIR", "CROSSPLAN_CACHE_REMOTE", "CROSSPLAN_CACHE_MODE")


@dataclass(frozen=True)
class BenchOptions:
    """What ``plan bench`` is told. Empty ``steps``: every go/rust/c step; no ``platforms``:
    the project's platforms other than the build platform."""

    steps: tuple[str, ...] = ()
    platforms: str | tuple[str, ...] | None = None
    modes: tuple[str, ...] = MODES
    repeat: int = 3
    toolchain_cache: ToolchainCache = "cold"
    base: str = DEFAULT_BASE  # base of the toolchain images bench makes ({arch}: Debian's)
    images: Mapping[str, str] = field(default_factory=dict)  # step -> toolchain image
    cache_dir: str | Path | None = None  # the persistent store: managed toolchains, wheels
    environ: Mapping[str, str] | None = None
    # Where build logs are kept (a failed round's hint points there); default:
    # <store>/logs/bench-<time>-<pid>/, created only when something is logged.
    keep_logs: str | Path | None = None


def _steps(recipe: Recipe, wanted: tuple[str, ...]) -> list[str]:
    if not wanted:
        found = [s for s, st in recipe.steps.items() if st.kind in COMPILE_KINDS]
        if not found:
            raise RecipeError("no go, rust or c steps to bench", file=recipe.label,
                              hint="name steps with --steps")
        return found
    unknown = [s for s in wanted if s not in recipe.steps]
    if unknown:
        raise RecipeError(f"unknown step(s): {', '.join(unknown)}", file=recipe.label,
                          hint="steps: " + ", ".join(recipe.steps))
    return list(dict.fromkeys(wanted))


def _platforms(recipe: Recipe, wanted: str | tuple[str, ...] | None,
               build: Platform) -> tuple[Platform, ...]:
    if wanted:
        return parse_platforms(wanted if isinstance(wanted, str) else list(wanted))
    plats = parse_platforms(list(recipe.project.platforms))
    return tuple(p for p in plats if p != build) or plats


def _modes_of(opts: BenchOptions) -> tuple[str, ...]:
    modes = tuple(dict.fromkeys(opts.modes))
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise RecipeError(f"unknown mode(s): {', '.join(bad) or 'none given'}",
                          hint="modes: " + ", ".join(MODES))
    if opts.repeat < 1:
        raise RecipeError("--repeat must be at least 1")
    return modes


def _require_base(recipe: Recipe, steps: list[str], plats: tuple[Platform, ...],
                  images: Mapping[str, str]) -> None:
    """Fail before any round when an emulated build would need ``--base`` and has none."""
    need = [s for s in steps if recipe.steps[s].kind in ("go", "c")
            and not (images.get(s) or recipe.steps[s].toolchain_image)]
    if need:
        kind = "go" if recipe.steps[need[0]].kind == "go" else "zig"
        raise no_base_problem(kind, plats[0], ", ".join(need))


def cold_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without what would warm or substitute a round's build: a shared toolchain
    cache (``CROSSPLAN_TOOLCACHE_DIR``) and the remote cache."""
    return {k: v for k, v in environ.items() if k not in COLD_SCRUB}


def make_modes(ctx: BenchContext, names: tuple[str, ...]) -> dict[str, Mode]:
    """The real modes: crossplan on the host (cross, native) and buildx under QEMU."""
    from crossplan.bench.emulated import EmulatedMode
    from crossplan.bench.host import HostMode

    out: dict[str, Mode] = {}
    for name in names:
        out[name] = EmulatedMode(ctx) if name == "emulated" else HostMode(ctx, name)
    return out


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, kernel and load: the context every figure needs."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"cpus": os.cpu_count(), "cpu_model": model, "machine": _pyplatform.machine(),
            "kernel": _pyplatform.release(), "load_average_at_start": [round(x, 2) for x in load]}


def _notes(ctx: BenchContext, modes: tuple[str, ...]) -> list[str]:
    notes = [
        "Every round starts from cold caches: a fresh store per host build (action cache, "
        "stat memo and toolchain caches under <store>/toolcache), and `docker buildx build "
        "--no-cache` without cache mounts for the emulated build.",
        "Excluded from the timings (see prep): making or checking toolchain images, installing "
        "managed toolchains, laying out build contexts"
        + (", pre-building the warm toolchain caches." if ctx.toolchain_cache == "warm" else "."),
        "cross/native seconds: plan + run of the step (hashing, toolchain probes and the store "
        "included); compile: the step's build; overhead: the rest.",
    ]
    if "emulated" in modes:
        notes.append("emulated seconds: the whole `docker buildx build`; compile: its RUN step "
                     "(under QEMU); overhead: buildx (context transfer, image resolution, "
                     "export).")
    if ctx.toolchain_cache == "cold":
        notes.append("toolchain caches cold: Go compiles its std packages and zig builds libc "
                     "(musl, compiler_rt) in every round, in every mode; Rust's std ships "
                     "prebuilt. This is a fresh CI runner's cost; --toolchain-cache warm "
                     "measures the project alone.")
    else:
        notes.append("toolchain caches warm: Go's std packages and zig's libc are pre-built "
                     "once (host: a pristine toolcache copied into each fresh store; emulated: "
                     "a derived toolchain image); the project itself is built cold.")
    notes.append(f"Machine: {os.cpu_count()} CPU(s); other work on it adds noise, so compare "
                 "medians and the ratios within one run.")
    return notes


def bench(
    plan_file: str | Path,
    options: BenchOptions | None = None,
    *,
    modes: Mapping[str, Mode] | None = None,
    on_sample: Callable[[Sample], None] = lambda s: None,
    on_progress: Callable[[str], None] = lambda m: None,
    clock: Callable[[], float] = time.perf_counter,
    workdir: Path | None = None,
) -> BenchReport:
    """Measure ``options.steps`` x ``options.platforms`` x ``options.modes``, N rounds.
    ``modes`` replaces the real modes (tests inject fakes)."""
    opts = options or BenchOptions()
    recipe = api.load(plan_file)
    names = _modes_of(opts)
    build = build_platform()
    steps = _steps(recipe, opts.steps)
    plats = _platforms(recipe, opts.platforms, build)
    environ = cold_environ(os.environ if opts.environ is None else opts.environ)
    store_dir = Path(opts.cache_dir) if opts.cache_dir else default_store_dir(environ)
    if modes is None and "emulated" in names and not opts.base:
        _require_base(recipe, steps, plats, opts.images)
    log_dir = Path(opts.keep_logs) if opts.keep_logs else (
        store_dir / "logs" / f"bench-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    scratch = workdir or Path(tempfile.mkdtemp(prefix="crossplan-bench-"))
    try:
        ctx = BenchContext(recipe, store_dir, scratch, build, plats, opts.toolchain_cache,
                           opts.base, dict(opts.images), environ, clock, on_progress,
                           log_dir=log_dir)
        impl = dict(modes) if modes is not None else make_modes(ctx, names)
        try:
            blocks = schedule(steps, plats, names, build)
            blocks, preps, skips = prepare_all(blocks, impl, on_progress)
            samples = run_rounds(blocks, impl, opts.repeat, on_sample, on_progress)
        finally:
            for mode in impl.values():
                close = getattr(mode, "close", None)
                if callable(close):
                    close()
        groups = summarize(samples, [(s, str(p)) for s in steps for p in plats],
                           build_platform=str(build))
        return BenchReport(
            project=recipe.project.name, build_platform=str(build), modes=names,
            repeat=opts.repeat, toolchain_cache=opts.toolchain_cache, groups=tuple(groups),
            samples=tuple(samples), prep=tuple(preps), skipped=tuple(skips),
            notes=tuple(_notes(ctx, names)), machine=machine_info(),
        )
    finally:
        if workdir is None:
            shutil.rmtree(scratch, ignore_errors=True)
