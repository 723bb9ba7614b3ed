"""No-op and scale: what `plan run` costs when nothing changed, as whole processes.

Each command is run N times, interleaved (farm-bench style), and its min and median kept;
every figure is a ratio against a reference measured in the same run, never a timed assert:

- ``plan run examples/shell`` (everything cached; answered by the no-op memo, and with the
  memo off: planned) versus ``docker buildx build`` of the equivalent two-platform copy-only
  image (the Dockerfile ``plan dockerfile`` generates), everything cached;
- ``plan --version`` / ``plan --help`` versus ``python -c "import json"`` and ``python -c pass``;
- ``plan run --push`` of an image already pushed versus a cached ``docker buildx build --push``
  with a registry cache (both to the registry on 127.0.0.1:5000);
- ``plan run`` of 2,000 cached shell steps versus a 3-step cached plan (memo and planned);
- in-process: ``recipes.load`` of the 2,000-step plan with the validated-recipe memo versus
  without it (pytest-benchmark).

The projects are backdated a minute after their first build (the no-op memo, like the stat
memo, never trusts a file modified within 2 s of a run), then run once more to write the
memo, which is checked to answer (the planner not imported) before anything is timed.

Real figures: ``pytest benchmarks/bench_noop.py -p no:cacheprovider`` (ratios in the
terminal summary); smoke run (one round each): add ``--benchmark-disable``. To measure an
older tree, put it first on PYTHONPATH (``git archive REV | tar -x -C /tmp/before``).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crossplan import api
from crossplan.api import buildx as buildx_api
from crossplan.recipes import loader

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "integration"))
from buildx_env import require_engine  # noqa: E402

SHELL = REPO_ROOT / "examples" / "shell"
PLATFORMS = "linux/amd64,linux/arm64"
PLAN = [sys.executable, "-m", "crossplan.cli"]
NO_MEMO = ["env", "CROSSPLAN_NOOP_MEMO=off"]  # the same run, planned (the memo off)
REGISTRY = "localhost:5000"  # started by scripts/ci-env.sh


def _once(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900,
                          check=False)
    secs = time.perf_counter() - t0
    assert proc.returncode == 0, f"{' '.join(argv)}:\n{proc.stdout}\n{proc.stderr}"
    return secs, proc.stdout


def interleaved(commands: dict[str, list[str]], env: dict[str, str], rounds: int,
                check: Callable[[str, str], None] | None = None) -> dict[str, tuple[float, float]]:
    """``{name: (min, median)}`` seconds, the commands run in turn ``rounds`` times."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, argv in commands.items():
            secs, out = _once(argv, env)
            if check is not None:
                check(name, out)
            times[name].append(secs)
    return {n: (min(t), statistics.median(t)) for n, t in times.items()}


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSPLAN_")}
    env.update(CROSSPLAN_CACHE_DIR=str(tmp_path / "store"), XDG_CACHE_HOME=str(tmp_path / "xdg"),
               COLUMNS="200")
    return env


def backdate(*roots: Path, seconds: float = 60) -> None:
    """As if built a minute ago: nothing racy for the no-op memo."""
    old = time.time() - seconds
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*dirnames, *filenames]:
                os.utime(os.path.join(dirpath, name), (old, old), follow_symlinks=False)
        os.utime(root, (old, old))


def memoised(argvs: list[list[str]], env: dict[str, str], *roots: Path) -> None:
    """Backdate ``roots``, run each argv (writes its memo), check the memos answer next."""
    backdate(*roots)
    for argv in argvs:
        _once(argv, env)
    has_memo = subprocess.run(  # as the `plan` processes see it (PYTHONPATH: an older tree)
        [sys.executable, "-c", "import importlib.util as u, sys; "
         "sys.exit(u.find_spec('crossplan.cli.noop') is None)"], env=env, check=False)
    if has_memo.returncode:
        return  # a tree without the memo: every run plans
    for argv in argvs:
        traced = subprocess.run([sys.executable, "-X", "importtime", *argv[1:]], env=env,
                                capture_output=True, text=True, timeout=300, check=True)
        assert "crossplan.planner" not in traced.stderr, f"no memo answered {argv}"


def _fmt(t: dict[str, tuple[float, float]], name: str) -> str:
    return f"{t[name][0] * 1000:.0f}/{t[name][1] * 1000:.0f} ms"


def _all_cached(name: str, out: str) -> None:
    if out.lstrip().startswith("{"):  # a plan run --json
        statuses = {s["status"] for s in json.loads(out)["steps"]}
        assert statuses == {"cached"}, out


def test_noop_shell_vs_cached_buildx(
    benchmark: Any, tmp_path: Path, full_size: bool, figures: dict[str, str]
) -> None:
    require_engine()
    project = tmp_path / "shell"
    shutil.copytree(SHELL, project)
    env = _env(tmp_path)
    run_argv = [*PLAN, "run", str(project), "--json", "--progress", "quiet"]
    _once(run_argv, env)  # the first build (untimed)
    memoised([run_argv], env, project, tmp_path / "store")
    ctx = tmp_path / "context"
    (gen,) = buildx_api.dockerfile(api.load(project), "image", context=ctx,
                                   cache_dir=tmp_path / "store")
    assert "FROM scratch" in gen.text
    buildx_argv = ["docker", "buildx", "build", "--progress", "plain", "--provenance=false",
                   "--platform", PLATFORMS, "--output", "type=cacheonly", str(ctx)]
    _once(buildx_argv, env)  # fills buildx's cache (untimed)
    rounds = 11 if full_size else 1
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c import json": [sys.executable, "-c", "import json"],
        "plan --version": [*PLAN, "--version"],
        "plan --help": [*PLAN, "--help"],
        "plan run (cached)": run_argv,
        "plan run (cached, planned)": [*NO_MEMO, *run_argv],
        "buildx build (cached)": buildx_argv,
    }
    t = benchmark.pedantic(lambda: interleaved(commands, env, rounds, _all_cached),
                           rounds=1, iterations=1)
    py, js = t["python -c pass"][1], t["python -c import json"][1]
    plan, planned, bx = (t["plan run (cached)"][1], t["plan run (cached, planned)"][1],
                         t["buildx build (cached)"][1])
    benchmark.extra_info.update({k: list(v) for k, v in t.items()})
    by_min = t["plan run (cached)"][0] / t["buildx build (cached)"][0]
    figures["no-op plan run examples/shell vs cached buildx build (min/median)"] = (
        f"plan {_fmt(t, 'plan run (cached)')}, buildx {_fmt(t, 'buildx build (cached)')}: "
        f"plan/buildx = {plan / bx:.2f}x median ({by_min:.2f}x min); planned (memo off) "
        f"{_fmt(t, 'plan run (cached, planned)')}: {planned / bx:.2f}x; {rounds} rounds"
    )
    figures["start-up vs python -c 'import json' (median)"] = (
        f"import json {_fmt(t, 'python -c import json')} (pass {py * 1000:.0f} ms); "
        f"--version {_fmt(t, 'plan --version')} ({t['plan --version'][1] / js:.2f}x), "
        f"--help {_fmt(t, 'plan --help')} ({t['plan --help'][1] / js:.1f}x), "
        f"no-op run {plan / js:.1f}x"
    )


def test_noop_push_vs_cached_buildx_push(
    benchmark: Any, tmp_path: Path, full_size: bool, figures: dict[str, str]
) -> None:
    """An image already pushed: `plan run --push` (one GET of the tag, no write; memoised
    and planned) versus `docker buildx build --push` with a registry cache, all cached."""
    require_engine()
    repo = f"{REGISTRY}/crossplan-bench/noop-{uuid.uuid4().hex[:8]}"
    project = tmp_path / "shell"
    shutil.copytree(SHELL, project)
    toml = project / "plan.toml"
    toml.write_text(toml.read_text().replace(
        '"localhost:5000/crossplan/shell-demo:1.0"', f'"{repo}:plan"'))
    env = _env(tmp_path)
    push_argv = [*PLAN, "run", str(project), "--push", "--json", "--progress", "quiet"]
    _once(push_argv, env)  # build and push (untimed)
    ctx = tmp_path / "context"
    buildx_api.dockerfile(api.load(project), "image", context=ctx, cache_dir=tmp_path / "store")
    cache = f"type=registry,ref={repo}:buildcache"
    # OCI media types, as plan pushes: with Docker's, the engine's re-push HEADs the tag twice
    # at once without accepting a manifest list, and this registry (distribution 2.8) then
    # rewrites the list to schema1 in both requests, which races (one answered 500 in CI).
    buildx_argv = ["docker", "buildx", "build", "--progress", "plain", "--provenance=false",
                   "--platform", PLATFORMS, "--output", "type=registry,oci-mediatypes=true",
                   "-t", f"{repo}:buildx",
                   "--cache-from", cache, "--cache-to", f"{cache},mode=max", str(ctx)]
    _once(buildx_argv, env)  # build, push, fill the registry cache (untimed)
    memoised([push_argv], env, project, tmp_path / "store")
    rounds = 7 if full_size else 1
    commands = {"plan run --push (up to date)": push_argv,
                "plan run --push (up to date, planned)": [*NO_MEMO, *push_argv],
                "buildx build --push (cached)": buildx_argv}

    def check(name: str, out: str) -> None:
        _all_cached(name, out)
        if name.startswith("plan run"):
            assert json.loads(out)["images"][0]["up_to_date"] is True, out

    t = benchmark.pedantic(lambda: interleaved(commands, env, rounds, check),
                           rounds=1, iterations=1)
    plan, bx = t["plan run --push (up to date)"][1], t["buildx build --push (cached)"][1]
    planned = t["plan run --push (up to date, planned)"][1]
    benchmark.extra_info.update({k: list(v) for k, v in t.items()})
    figures["no-op plan run --push vs cached buildx build --push (min/median)"] = (
        f"plan {_fmt(t, 'plan run --push (up to date)')}, buildx "
        f"{_fmt(t, 'buildx build --push (cached)')}: {plan / bx:.2f}x median; planned (memo "
        f"off) {_fmt(t, 'plan run --push (up to date, planned)')}: {planned / bx:.2f}x; "
        f"{rounds} rounds"
    )


def many_steps(root: Path, n: int) -> Path:
    """``n`` platform-independent shell steps, chains of 10 (the 2,000-step no-op)."""
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.txt").write_text("x\n")
    parts = ['[project]\nname = "many"\nplatforms = ["linux/amd64"]\n']
    for i in range(n):
        dep = f'deps = ["s{i - 1}"]\n' if i % 10 else ""
        parts.append(f'[steps.s{i}]\nkind = "shell"\nsrc = "src/"\n'
                     f'command = ["sh", "-c", "cp a.txt o{i}.txt"]\noutputs = ["o{i}.txt"]\n'
                     f"platform_independent = true\n{dep}")
    (root / "plan.toml").write_text("\n".join(parts))
    return root


def test_noop_scale_2000_steps(
    benchmark: Any, tmp_path: Path, full_size: bool, figures: dict[str, str]
) -> None:
    n = 2000 if full_size else 50
    big = many_steps(tmp_path / "big", n)
    small = many_steps(tmp_path / "small", 3)
    env = _env(tmp_path)
    argv = {name: [*PLAN, "run", str(p), "--json", "--progress", "quiet", "-j", "8"]
            for name, p in (("3 steps", small), (f"{n} steps", big))}
    for a in argv.values():
        _once(a, env)  # the builds (untimed)
    memoised(list(argv.values()), env, small, big, tmp_path / "store")
    rounds = 7 if full_size else 1
    commands = {**{f"memo, {k}": a for k, a in argv.items()},
                **{f"planned, {k}": [*NO_MEMO, *a] for k, a in argv.items()}}
    t = benchmark.pedantic(lambda: interleaved(commands, env, rounds, _all_cached),
                           rounds=1, iterations=1)
    benchmark.extra_info.update({k: list(v) for k, v in t.items()})
    if not os.path.exists("/usr/bin/time"):  # GNU time measures the peak RSS
        rss = dict.fromkeys(commands, 0)
    else:
        rss = {name: _peak_rss(a, env) for name, a in commands.items()}
    for how in ("memo", "planned"):
        lo, hi = t[f"{how}, 3 steps"][1], t[f"{how}, {n} steps"][1]
        mlo, mhi = rss[f"{how}, 3 steps"], rss[f"{how}, {n} steps"]
        figures[f"no-op plan run of {n} cached shell steps vs 3 ({how}; min/median)"] = (
            f"{_fmt(t, f'{how}, {n} steps')} vs {_fmt(t, f'{how}, 3 steps')}: "
            f"{hi / lo:.2f}x, {(hi - lo) / (n - 3) * 1e6:.0f} µs per extra node; peak RSS "
            f"{mhi / 2**20:.0f} vs {mlo / 2**20:.0f} MiB, {(mhi - mlo) / (n - 3) / 1024:.1f} KiB "
            "per extra node"
        )


def _peak_rss(argv: list[str], env: dict[str, str]) -> int:
    """Peak RSS in bytes of one run of ``argv``, as GNU time reports it (a child forked from
    this process would start from this process's own high-water mark)."""
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], env=env, capture_output=True,
                          text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stderr.strip().splitlines()[-1]) * 1024


@pytest.fixture
def big_plan(tmp_path: Path, full_size: bool, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CROSSPLAN_CACHE_DIR", str(tmp_path / "store"))
    return many_steps(tmp_path / "memo", 2000 if full_size else 50)


def test_recipe_load_memo(
    benchmark: Any, big_plan: Path, full_size: bool, figures: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``recipes.load`` with the memo (a hit) versus the slow path (memo off), same process."""
    rounds = 7 if full_size else 1
    monkeypatch.setenv("CROSSPLAN_RECIPE_MEMO", "off")
    slow = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        reference = loader.load(big_plan)
        slow.append(time.perf_counter() - t0)
    monkeypatch.delenv("CROSSPLAN_RECIPE_MEMO")
    loader.remember(loader.load(big_plan))  # writes the memo (as a run does once it planned)
    hits: list[float] = []

    def hit() -> object:
        t0 = time.perf_counter()
        recipe = loader.load(big_plan)
        hits.append(time.perf_counter() - t0)
        return recipe

    got = benchmark.pedantic(hit, rounds=rounds, iterations=1)
    assert got == reference
    fast = statistics.median(hits)  # also with --benchmark-disable (one round)
    figures["recipes.load, 2,000 steps: memo hit vs validation (median)"] = (
        f"{fast * 1000:.1f} ms vs {statistics.median(slow) * 1000:.1f} ms: "
        f"{fast / statistics.median(slow):.3f}x"
    )
