"""Foundation benchmarks: keys of a synthetic 5,000-step x 2-platform DAG (plan, and a fully
cached run), and hashing a 20,000-file tree cold vs warm (stat memo).

Real figures: ``pytest benchmarks/``. Smoke run (small sizes, one round):
``pytest benchmarks/ --benchmark-disable``.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from testkit import plan_of

from crossplan.cache.store import Entry, OutputFile, Store
from crossplan.executors.protocol import ActionResult
from crossplan.executors.wrappers import LocalCache
from crossplan.planner import Action, NodeId, Plan
from crossplan.probe.digest import StatMemo, tree_digest
from crossplan.recipes import Recipe, from_dict
from crossplan.runner.scheduler import execute_plan

OLD = time.time() - 86400  # mtimes outside the stat memo's racy window
PLATFORMS = ["linux/amd64", "linux/arm64"]


# -- synthetic DAG -------------------------------------------------------------------------
def synthetic_recipe(root: Path, n: int, seed: int = 42) -> Recipe:
    """``n`` shell steps; each depends on up to 2 earlier ones; all share a small src dir."""
    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    for i in range(8):
        f = src / f"file{i}.txt"
        f.write_text(f"shared input {i}\n" * 20)
        os.utime(f, (OLD, OLD))
    rng = random.Random(seed)
    steps: dict[str, dict[str, Any]] = {}
    for i in range(n):
        deps = sorted({f"s{rng.randrange(i)}" for _ in range(rng.randint(0, 2))}) if i else []
        steps[f"s{i}"] = {
            "kind": "shell",
            "src": "src",
            "deps": deps,
            "command": ["sh", "-c", f"cat file*.txt > out{i}.txt"],
            "outputs": [f"out{i}.txt"],
        }
    return from_dict(
        {"project": {"name": "synthetic", "platforms": PLATFORMS}, "steps": steps},
        file=root / "plan.toml",
    )


def populate_store(p: Plan, store: Store) -> int:
    """Publish an entry for every node's key, as a previous run would have (no commands run)."""
    outputs: dict[NodeId, dict[str, str]] = {}
    for node, pn in p.nodes.items():
        key = pn.key({d: outputs[d] for d in pn.deps})
        data = f"{node}\n".encode()
        digest = store.put_bytes(data)
        (path,) = pn.step.outputs
        store.publish(
            Entry(key, str(node), (OutputFile(path, digest, 0o644, len(data)),), None, 0.0,
                  time.time(), {})
        )
        outputs[node] = {path: digest}
    return len(outputs)


class NeverBuild:
    """The innermost executor of a fully cached run: reaching it is a failure."""

    def execute(self, action: Action, deps: Mapping[NodeId, Entry]) -> ActionResult:
        raise AssertionError(f"{action.node} should have been a cache hit")


@pytest.fixture(scope="module")
def dag(tmp_path_factory: pytest.TempPathFactory, full_size: bool) -> tuple[Path, Recipe]:
    root = tmp_path_factory.mktemp("dag")
    return root, synthetic_recipe(root / "proj", 5000 if full_size else 200)


@pytest.fixture(scope="module")
def cached_store(dag: tuple[Path, Recipe]) -> Iterator[tuple[Plan, Store]]:
    root, recipe = dag
    p = plan_of(recipe, environ={})
    store = Store(root / "store")
    assert populate_store(p, store) == len(p.nodes)
    yield p, store
    store.close()


_times: dict[str, float] = {}


def _mean(benchmark: Any) -> float | None:
    stats = getattr(benchmark, "stats", None)
    return float(stats.stats.mean) if stats is not None else None


def test_load_synthetic_recipe(benchmark: Any, dag: tuple[Path, Recipe]) -> None:
    root, recipe = dag
    n = len(recipe.steps)
    again = benchmark.pedantic(synthetic_recipe, args=(root / "proj", n), rounds=3, iterations=1)
    assert again == recipe


def test_make_plan_keys(
    benchmark: Any, dag: tuple[Path, Recipe], tmp_path: Path, figures: dict[str, str]
) -> None:
    _, recipe = dag
    memo = StatMemo(tmp_path / "memo")
    plan_of(recipe, environ={}, memo=memo)  # warm the memo, as in any second invocation
    p = benchmark.pedantic(
        plan_of, args=(recipe,), kwargs={"environ": {}, "memo": memo}, rounds=5, iterations=1
    )
    assert len(p.nodes) == 2 * len(recipe.steps)
    mean = _mean(benchmark)
    if mean is not None:
        _times["plan"] = mean
        figures["make_plan"] = f"{len(p.nodes)} nodes in {mean * 1000:.0f} ms " \
            f"({mean / len(p.nodes) * 1e6:.0f} us/node)"


def test_fully_cached_run(
    benchmark: Any, cached_store: tuple[Plan, Store], figures: dict[str, str]
) -> None:
    p, store = cached_store

    def run() -> Any:
        executor = LocalCache(store, NeverBuild(), lambda a, k, d: {"key": k}, lambda e: None)
        result, _ = execute_plan(p, executor)
        return result

    result = benchmark.pedantic(run, rounds=3, iterations=1)
    assert {s.status for s in result.steps} == {"cached"}
    assert len(result.steps) == len(p.nodes)
    mean = _mean(benchmark)
    if mean is not None:
        text = f"{len(p.nodes)} nodes in {mean:.2f} s ({mean / len(p.nodes) * 1e3:.2f} ms/node)"
        if "plan" in _times:
            text += f"; cached run / plan-only = {mean / _times['plan']:.1f}x"
        figures["fully cached run"] = text


# -- tree hashing --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory, full_size: bool) -> Path:
    root = tmp_path_factory.mktemp("tree")
    rng = random.Random(7)
    n = 20_000 if full_size else 1_000
    for i in range(n):
        d = root / f"pkg{i % 100:02d}" / f"mod{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        f = d / f"file{i}.c"
        f.write_bytes(rng.randbytes(rng.randint(64, 8192)))
        os.utime(f, (OLD, OLD))
    return root


def test_tree_digest_cold(benchmark: Any, big_tree: Path, figures: dict[str, str]) -> None:
    td = benchmark.pedantic(tree_digest, args=(big_tree,), rounds=3, iterations=1)
    assert len(td.files) == sum(1 for p in big_tree.rglob("*") if p.is_file())
    _times["cold_digest"] = td.digest  # type: ignore[assignment]
    mean = _mean(benchmark)
    if mean is not None:
        _times["cold"] = mean
        figures["tree digest cold"] = f"{len(td.files)} files in {mean * 1000:.0f} ms"


def test_tree_digest_warm_stat_memo(
    benchmark: Any, big_tree: Path, tmp_path: Path, figures: dict[str, str]
) -> None:
    memo_dir = tmp_path / "memo"
    first = StatMemo(memo_dir)
    cold = tree_digest(big_tree, memo=first)
    first.save()

    def warm() -> Any:
        return tree_digest(big_tree, memo=StatMemo(memo_dir))  # a new process: memo from disk

    td = benchmark.pedantic(warm, rounds=5, iterations=1)
    assert td.digest == cold.digest
    if "cold_digest" in _times:
        assert td.digest == _times["cold_digest"]
    mean = _mean(benchmark)
    if mean is not None:
        text = f"{len(td.files)} files in {mean * 1000:.0f} ms"
        if "cold" in _times:
            text += f"; warm/cold = {mean / _times['cold']:.2f}"
        figures["tree digest warm (stat memo)"] = text
