"""Benchmarks against baselines taken in the same run (the ratios are the figures):

- a no-op ``plan run`` (everything cached) versus a fully cached ``docker buildx build`` of
  the Dockerfile crossplan generates for the same image (``plan dockerfile --context``):
  both as the commands a user types, so both pay their process start-up;
- cross (amd64 -> arm64) versus native (amd64) builds of the same Go program from cold
  caches, through ``plan bench``'s own machinery (the goal: cross within 1.15x of native).

Real figures: ``pytest benchmarks/bench_plan_bench.py`` (ratios in the terminal summary);
smoke run (one round each): add ``--benchmark-disable``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from crossplan import api
from crossplan.api import buildx as buildx_api
from crossplan.bench import BenchOptions, bench
from crossplan.platforms import build_platform

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "integration"))
from buildx_env import TOOLCACHE, TOOLCHAIN_STORE, require_engine  # noqa: E402

HELLO = REPO_ROOT / "examples" / "hello"
PLATFORMS = "linux/amd64,linux/arm64"


def _store(root: Path) -> Path:
    """A store sharing the CI's unpacked managed toolchains and warm tool cache (zig's libc):
    this benchmark is about no-op runs, not about first builds."""
    store = root / "store"
    store.mkdir(parents=True)
    TOOLCACHE.mkdir(parents=True, exist_ok=True)
    (TOOLCHAIN_STORE / "toolchains").mkdir(parents=True, exist_ok=True)
    (store / "toolcache").symlink_to(TOOLCACHE)
    (store / "toolchains").symlink_to(TOOLCHAIN_STORE / "toolchains")
    return store


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900,
                          check=False)
    secs = time.perf_counter() - t0
    assert proc.returncode == 0, f"{' '.join(argv)}:\n{proc.stdout}\n{proc.stderr}"
    return secs, proc


def test_noop_plan_run_vs_cached_buildx_build(
    benchmark: Any, tmp_path: Path, full_size: bool, figures: dict[str, str]
) -> None:
    require_engine()
    project = tmp_path / "hello"
    shutil.copytree(HELLO, project)
    store = _store(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "XDG_CACHE_HOME"}
    env.update(CROSSPLAN_CACHE_DIR=str(store), COLUMNS="200")
    plan_argv = [sys.executable, "-m", "crossplan.cli", "run", str(project), "--json"]
    _timed(plan_argv, env)  # the first build (untimed)
    ctx = tmp_path / "context"
    (gen,) = buildx_api.dockerfile(api.load(project), "image", context=ctx, cache_dir=store)
    buildx_argv = ["docker", "buildx", "build", "--progress", "plain", "--provenance=false",
                   "--platform", PLATFORMS, "--output", "type=cacheonly", str(ctx)]
    _timed(buildx_argv, env)  # fills buildx's cache (untimed)

    rounds = 5 if full_size else 1
    plan_times: list[float] = []

    def noop_plan() -> subprocess.CompletedProcess[str]:
        secs, proc = _timed(plan_argv, env)
        plan_times.append(secs)
        return proc

    proc = benchmark.pedantic(noop_plan, rounds=rounds, iterations=1)
    statuses = {s["status"] for s in json.loads(proc.stdout)["steps"]}
    assert statuses == {"cached"}, proc.stdout
    buildx_times = []
    for _ in range(rounds):
        secs, out = _timed(buildx_argv, env)
        buildx_times.append(secs)
        assert "CACHED" in out.stdout + out.stderr
    assert "FROM scratch" in gen.text
    startup = min(_timed([sys.executable, "-m", "crossplan.cli", "--help"], env)[0]
                  for _ in range(rounds))
    plan_s, buildx_s = min(plan_times), min(buildx_times)
    ratio = buildx_s / plan_s
    benchmark.extra_info.update(plan_noop_seconds=plan_s, buildx_cached_seconds=buildx_s,
                                ratio=ratio, plan_startup_seconds=startup)
    figures["no-op plan run vs cached buildx build"] = (
        f"`plan run` (all cached) {plan_s:.2f}s (of which interpreter and imports, `plan "
        f"--help`: {startup:.2f}s), `docker buildx build` of the generated Dockerfile (all "
        f"cached) {buildx_s:.2f}s: buildx/plan = {ratio:.2f}x (min of {rounds})"
    )


def test_cross_vs_native_go_build(
    benchmark: Any, tmp_path: Path, full_size: bool, figures: dict[str, str]
) -> None:
    """hello-go from cold caches (Go compiles its std for the target too), interleaved."""
    target = "linux/arm64" if build_platform().arch != "arm64" else "linux/amd64"
    opts = BenchOptions(steps=("hello-go",), platforms=target, modes=("cross", "native"),
                        repeat=3 if full_size else 1, cache_dir=TOOLCHAIN_STORE)
    report = benchmark.pedantic(bench, args=(HELLO / "plan.toml", opts), kwargs={
        "workdir": tmp_path}, rounds=1, iterations=1)
    assert report.ok and not report.skipped, report.as_json()
    (group,) = report.groups
    cross, native = group.stats["cross"], group.stats["native"]
    ratio = group.ratios["cross/native"]
    best = (cross.min or 0) / (native.min or 1)
    benchmark.extra_info.update(cross_median=cross.median, native_median=native.median,
                                ratio_median=ratio, ratio_min=best)
    goal = "met" if ratio <= 1.15 else "NOT met"
    figures["cross vs native Go build (cold)"] = (
        f"hello-go cross {build_platform()} -> {target} median {cross.median:.1f}s, native "
        f"{native.median:.1f}s: cross/native = {ratio:.2f}x (min/min {best:.2f}x; goal <= "
        f"1.15x {goal}; {report.repeat} round(s))"
    )
    if full_size:
        # The same compiler compiles the same packages; only noise (2 shared cores) and the
        # per-arch backend differ. A gross regression (e.g. emulation) would be >> 1.5x.
        assert min(ratio, best) < 1.5, figures

