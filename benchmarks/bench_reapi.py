"""Benchmarks of remote execution on the REAPI cluster of scripts/reapi-env.sh, as ratios
measured in the same run:

- overhead per action: trivial independent steps executed remotely vs in the local sandbox;
- a multi-step C build (zig, cross-compiled) from empty caches with 1 vs 2 x86-64 workers
  (the second is added with ``reapi-env.sh add-worker`` for the measurement);
- a fully remote-cached rebuild (fresh local store, the action cache answers) vs the cold
  remote build of the same project.

Real figures: ``pytest benchmarks/bench_reapi.py``; smoke run: ``--benchmark-disable``.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit import require_component

from crossplan import api
from crossplan.executors.result import RunResult

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_SCRIPT = REPO_ROOT / "scripts" / "reapi-env.sh"
REMOTE = {"CROSSPLAN_EXECUTION_REMOTE": "grpc://127.0.0.1:50051",
          "CROSSPLAN_EXECUTION_INSTANCE": "main"}


def reapi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ENV_SCRIPT), *args], capture_output=True, text=True,
                          check=False, timeout=180)


@pytest.fixture(scope="module")
def cluster() -> None:
    require_component(reapi("status").returncode == 0,
                      "the REAPI cluster is not running (scripts/reapi-env.sh up)")


def trivial(root: Path, n: int) -> Path:
    """``n`` independent trivial shell steps; a fresh salt makes them new REAPI actions."""
    (root / "src").mkdir(parents=True)
    (root / "src" / "salt").write_text(uuid.uuid4().hex)
    steps = "".join(
        f'[steps.t{i}]\nkind = "shell"\nsrc = "src/"\nplatform_independent = true\n'
        f'command = ["sh", "-c", "cat salt > out{i}"]\noutputs = ["out{i}"]\n\n'
        for i in range(n))
    (root / "plan.toml").write_text(
        f'[project]\nname = "trivial"\nplatforms = ["linux/amd64"]\n\n{steps}')
    return root


def c_project(root: Path, units: int) -> Path:
    """``units`` C steps (zig cc for linux/arm64, cross-compiled), independent, salted."""
    (root / "src").mkdir(parents=True)
    salt = uuid.uuid4().hex
    body = "\n".join(f"static int f{j}(int x) {{ return x * {j} + {j % 7}; }}"
                     for j in range(400))
    calls = " + ".join(f"f{j}(argc)" for j in range(400))
    (root / "src" / "u.c").write_text(
        f"/* {salt} */\n#include <stdio.h>\n{body}\n"
        f'int main(int argc, char **argv) {{ printf("%d\\n", {calls}); return 0; }}\n')
    steps = "".join(
        f'[steps.c{i}]\nkind = "c"\nsrc = "src/"\ncompiler = "zig"\n'
        f'build = ["sh", "-c", "$CC -O2 -DUNIT={i} -o app{i} u.c"]\noutputs = ["app{i}"]\n\n'
        for i in range(units))
    (root / "plan.toml").write_text(
        f'[project]\nname = "multi"\nplatforms = ["linux/arm64"]\n\n[toolchains]\n'
        f'zig = "0.17.1"\n\n{steps}')
    return root


def build(project: Path, store: Path, executor: str, jobs: int) -> tuple[RunResult, float]:
    t0 = time.perf_counter()
    p = api.plan(api.load(project / "plan.toml"), None, cache_dir=store)
    result = api.run(p, api.RunOptions(cache_dir=store, executor=executor, jobs=jobs,
                                       environ={**_environ(), **REMOTE}))
    return result, time.perf_counter() - t0


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)


def statuses(r: RunResult) -> set[str]:
    return {s.status for s in r.steps}


def test_overhead_per_action_remote_vs_local(
    benchmark: Any, cluster: None, tmp_path: Path, full_size: bool, figures: dict[str, str],
) -> None:
    n = 8 if full_size else 3
    local, local_s = build(trivial(tmp_path / "l", n), tmp_path / "sl", "local", 2)
    assert statuses(local) == {"built"}
    times: list[float] = []
    runs = iter(range(100))

    def fresh() -> tuple[tuple[Path, Path], dict[str, Any]]:
        i = next(runs)
        return (trivial(tmp_path / f"r{i}", n), tmp_path / f"sr{i}"), {}

    def remote(proj: Path, store: Path) -> RunResult:
        r, secs = build(proj, store, "remote", 2)
        times.append(secs)
        return r

    result = benchmark.pedantic(remote, setup=fresh, rounds=1, iterations=1)
    assert statuses(result) == {"built"}  # executed (new salt), not from the action cache
    remote_s = min(times)
    figures["reapi, overhead per trivial action"] = (
        f"local {local_s / n * 1000:.0f} ms, remote {remote_s / n * 1000:.0f} ms per action "
        f"({n} actions, 2 jobs): {remote_s / local_s:.1f}x")


@pytest.fixture
def second_worker(cluster: None) -> Iterator[None]:
    yield
    reapi("remove-worker", "x86-64-b")


def test_multi_step_cold_one_vs_two_workers_then_remote_cached(
    benchmark: Any, second_worker: None, tmp_path: Path, full_size: bool,
    figures: dict[str, str],
) -> None:
    units = 6 if full_size else 2
    warm, _ = build(c_project(tmp_path / "warm", 1), tmp_path / "s0", "remote", 1)
    assert statuses(warm) == {"built"}  # the workers' zig caches: libc for the target
    def cold(tag: str) -> tuple[Path, float]:
        """The best of two cold builds (fresh salts: new actions each time); one in a
        smoke run (``--benchmark-disable``), where the figure is not the point."""
        best = float("inf")
        for i in range(2 if full_size else 1):
            proj = c_project(tmp_path / f"{tag}{i}", units)
            r, secs = build(proj, tmp_path / f"s-{tag}{i}", "remote", units)
            assert statuses(r) == {"built"}
            best = min(best, secs)
        return proj, best

    _, one_s = cold("one")
    assert reapi("add-worker", "x86-64", "x86-64-b").returncode == 0
    deadline = time.monotonic() + 30
    while "crossplan-x86-64-b" not in reapi("sql", "select bot_id from bots").stdout:
        assert time.monotonic() < deadline, "the second worker did not register"
        time.sleep(0.2)
    proj2, two_s = cold("two")
    cached = benchmark.pedantic(lambda: build(proj2, tmp_path / "s3", "remote", units),
                                rounds=1, iterations=1)
    assert statuses(cached[0]) == {"substituted"}  # a fresh store: all from the action cache
    cached_s = cached[1]
    figures["reapi, multi-step cold build"] = (
        f"{units} C steps: 1 worker {one_s:.1f}s, 2 workers {two_s:.1f}s: "
        f"{one_s / two_s:.2f}x")
    figures["reapi, fully remote-cached rebuild"] = (
        f"cold remote {two_s:.1f}s, fresh store + action cache {cached_s:.1f}s: "
        f"{two_s / cached_s:.1f}x")
