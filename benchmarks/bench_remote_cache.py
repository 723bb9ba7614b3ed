"""Benchmark: a fresh store substituting from a warm remote cache vs a cold build of the
same example, in the same run (the ratio is the figure: cold seconds / warm seconds).

Examples: ``examples/shell`` (5 tiny steps + a 2-platform image) and ``cross-c``, generated
here: a C program cross-compiled by the host's gcc / aarch64-linux-gnu-gcc for
linux/amd64 and linux/arm64 (shell steps) and packaged into a 2-platform image.

Real figures: ``pytest benchmarks/bench_remote_cache.py`` (ratios in the terminal summary);
smoke run (a smaller cross-c): add ``--benchmark-disable``.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit import require_component

from crossplan import api
from crossplan.executors.result import RunResult

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "integration"))
from registry_proc import RegistryProc  # noqa: E402

_CROSS_C = """\
[project]
name = "cross-c"
platforms = ["linux/amd64", "linux/arm64"]

[steps.app]
kind = "shell"
src = "src/"
command = ["sh", "-c", '''
case "$TARGETARCH" in amd64) CC=gcc ;; arm64) CC=aarch64-linux-gnu-gcc ;; esac
mkdir -p obj out
for f in *.c; do $CC -O2 -c "$f" -o "obj/${f%.c}.o"; done
$CC -static -o out/app obj/*.o
''']
outputs = ["out/app"]

[steps.image]
kind = "image"
copy = [{ from = "app", src = "out/app", dest = "/usr/local/bin/app" }]
entrypoint = ["/usr/local/bin/app"]
"""


def _unit(i: int) -> str:
    """A translation unit with enough loops and inlining to keep -O2 busy for a while."""
    fns = "\n".join(
        f"static double f{i}_{j}(double x) {{ double s = 0; for (int k = 0; k < {j + 3}; k++)"
        f" s += x * k / (k + {i + 1}.0) - (s > {j} ? s / 3 : x); return s; }}"
        for j in range(120)
    )
    calls = " + ".join(f"f{i}_{j}(x)" for j in range(120))
    return f"{fns}\ndouble unit{i}(double x) {{ return {calls}; }}\n"


def make_cross_c(root: Path, units: int) -> Path:
    """``units`` C translation units (12 take ~20 s to build for both platforms on 2 cores)."""
    (root / "src").mkdir(parents=True)
    (root / "plan.toml").write_text(_CROSS_C)
    for i in range(units):
        (root / "src" / f"u{i}.c").write_text(_unit(i))
    decls = "".join(f"double unit{i}(double);\n" for i in range(units))
    total = " + ".join(f"unit{i}(1.5)" for i in range(units))
    (root / "src" / "main.c").write_text(
        f'#include <stdio.h>\n{decls}int main(void) {{ printf("%f\\n", {total}); return 0; }}\n'
    )
    return root


def make_shell(root: Path, size: int) -> Path:
    shutil.copytree(REPO_ROOT / "examples" / "shell", root)
    return root


EXAMPLES: dict[str, Callable[[Path, int], Path]] = {"shell": make_shell, "cross-c": make_cross_c}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProc]:
    reg = RegistryProc(tmp_path_factory.mktemp("bench-registry")).start()
    try:
        yield reg
    finally:
        reg.stop()


def build(project: Path, store: Path, remote: str | None = None) -> tuple[RunResult, float]:
    """Plan and run ``project`` into ``store`` (the CLI's work, minus interpreter start-up)."""
    t0 = time.perf_counter()
    p = api.plan(api.load(project), None, cache_dir=store)
    result = api.run(p, api.RunOptions(cache_dir=store, cache_remote=remote,
                                       cache_mode="readwrite" if remote else "off"))
    return result, time.perf_counter() - t0


@pytest.mark.parametrize("example", list(EXAMPLES))
def test_fresh_store_with_warm_remote_vs_cold_build(
    benchmark: Any, registry: RegistryProc, tmp_path: Path, example: str, full_size: bool,
    figures: dict[str, str],
) -> None:
    if example == "cross-c":
        require_component(shutil.which("aarch64-linux-gnu-gcc") is not None,
                          "needs gcc-aarch64-linux-gnu")
    project = EXAMPLES[example](tmp_path / "proj", 12 if full_size else 2)
    remote = f"{registry.address}/bench/{example}"

    cold, cold_s = build(project, tmp_path / "cold")  # the baseline: no remote at all
    assert {s.status for s in cold.steps} == {"built"}, cold.steps
    warmed, _ = build(project, tmp_path / "pusher", remote)  # fills the remote
    assert {s.status for s in warmed.steps} == {"built"} and warmed.warnings == ()

    stores = iter(range(1000))
    times: list[float] = []

    def fresh_store() -> tuple[tuple[Path], dict[str, Any]]:
        return (tmp_path / f"fresh-{next(stores)}",), {}

    def substitute(store: Path) -> RunResult:
        result, secs = build(project, store, remote)
        times.append(secs)
        return result

    result = benchmark.pedantic(substitute, setup=fresh_store, rounds=1, iterations=1)
    assert {s.status for s in result.steps} == {"substituted"}, result.steps
    assert [i.index_digest for i in result.images] == [i.index_digest for i in cold.images]
    warm_s = min(times)
    ratio = cold_s / warm_s
    benchmark.extra_info.update(cold_seconds=cold_s, warm_seconds=warm_s, ratio=ratio)
    figures[f"remote cache, {example}"] = (
        f"cold build {cold_s:.2f}s, fresh store + warm remote {warm_s:.2f}s: {ratio:.1f}x"
    )
    if example == "cross-c" and full_size:
        assert ratio > 2, figures  # compiling must cost more than downloading
