"""``explain``: what a key is made of and what changed since the last recorded run."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit import plan_of

from crossplan.api.running import executor_for
from crossplan.cache.store import Store
from crossplan.inspect.explain import diff_components, explain_node
from crossplan.planner import NodeId, Plan
from crossplan.recipes import from_dict
from crossplan.runner.scheduler import execute_plan

OLD = time.time() - 3600
SH = ["sh", "-c"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "proj"
    for rel in ("src/a.txt", "src/b.txt"):
        (r / rel).parent.mkdir(parents=True, exist_ok=True)
        (r / rel).write_text(rel + "\n")
        os.utime(r / rel, (OLD, OLD))
    return r


def _plan(root: Path, gen_cmd: str = "cat a.txt b.txt > g.txt") -> Plan:
    steps: dict[str, Any] = {
        "gen": {"kind": "shell", "src": "src", "command": [*SH, gen_cmd], "outputs": ["g.txt"],
                "platform_independent": True},
        "use": {"kind": "shell", "src": "src", "deps": ["gen"], "outputs": ["u.txt"],
                "command": [*SH, "cp deps/gen/g.txt u.txt"]},
    }
    recipe = from_dict(
        {"project": {"name": "e", "platforms": ["amd64", "arm64"]}, "steps": steps},
        file=root / "plan.toml",
    )
    return plan_of(recipe, environ={"PATH": os.environ["PATH"]})


def _build(p: Plan, store: Store) -> None:
    result, _ = execute_plan(p, executor_for(p, store, {}, store.root / "tc", lambda e: None))
    assert result.ok


GEN, USE = NodeId("gen", "any"), NodeId("use", "linux/arm64")


def test_never_built(root: Path, store: Store) -> None:
    ex = explain_node(_plan(root), store, GEN)
    assert ex.key is not None
    assert not ex.cached
    assert ex.last_key is None
    assert ex.changes == ["no recorded run of this step: it has never been built with this store"]
    dep_unknown = explain_node(_plan(root), store, USE)
    assert dep_unknown.key is None
    assert dep_unknown.deps == {"gen": None}


def test_nothing_changed_after_a_build(root: Path, store: Store) -> None:
    _build(_plan(root), store)
    ex = explain_node(_plan(root), store, USE)
    assert ex.cached
    assert ex.key == ex.last_key
    assert ex.changes == ["nothing changed since the last recorded run"]
    assert set(ex.inputs) == {"a.txt", "b.txt"}
    assert ex.as_json()["inputs"]["files"] == 2


def test_names_the_changed_input_file(root: Path, store: Store) -> None:
    _build(_plan(root), store)
    (root / "src/b.txt").write_text("changed\n")
    ex = explain_node(_plan(root), store, GEN)
    assert not ex.cached
    assert ex.changes == ["input changed: b.txt"]


def test_names_added_and_removed_inputs(root: Path, store: Store) -> None:
    _build(_plan(root), store)
    (root / "src/a.txt").unlink()
    (root / "src/new.txt").write_text("n\n")
    assert explain_node(_plan(root), store, GEN).changes == [
        "input removed: a.txt", "input added: new.txt",
    ]


def test_names_a_changed_command(root: Path, store: Store) -> None:
    _build(_plan(root), store)
    ex = explain_node(_plan(root, "cat b.txt a.txt > g.txt"), store, GEN)
    assert len(ex.changes) == 1
    assert ex.changes[0].startswith("step.command changed: ")
    assert "cat b.txt a.txt > g.txt" in ex.changes[0]


def test_names_a_changed_dep_output(root: Path, store: Store) -> None:
    _build(_plan(root), store)
    _build(_plan(root, "cat b.txt a.txt > g.txt"), store)  # gen's output changes
    _build(_plan(root), store)  # back to the first gen: use@... last recorded with it
    _build(_plan(root, "cat b.txt a.txt > g.txt"), store)
    ex = explain_node(_plan(root), store, USE)
    assert ex.cached  # both versions are in the store
    assert "dep gen output changed: g.txt" in ex.changes


def test_diff_components_recurses_and_skips_inputs() -> None:
    before = {"inputs": "x", "step": {"env": {"A": "1"}, "outputs": ["o"]}, "platform": "p"}
    after = {"inputs": "y", "step": {"env": {"A": "2"}, "outputs": ["o"]}, "platform": "p"}
    assert diff_components(before, after) == ["step.env.A changed: '1' -> '2'"]


def test_long_changed_values_stay_distinguishable() -> None:
    prefix = "mkdir -p out && " * 10
    (change,) = diff_components(
        {"step": {"command": ["sh", "-c", prefix + "echo old-tail"]}},
        {"step": {"command": ["sh", "-c", prefix + "echo new-tail"]}},
    )
    before, after = change.removeprefix("step.command changed: ").split(" -> ")
    assert "old-tail" in before and "new-tail" in after
    assert len(change) < 250
