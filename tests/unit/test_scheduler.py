"""The executor: cache hits, hermetic work dirs, failures never cached, early cutoff, events."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit import plan_of

from crossplan.api.running import executor_for
from crossplan.cache.store import Entry, Store
from crossplan.errors import EnvironmentProblem
from crossplan.executors.events import StepEvent
from crossplan.executors.result import RunResult
from crossplan.planner import NodeId, Plan
from crossplan.recipes import from_dict
from crossplan.runner.scheduler import execute_plan

OLD = time.time() - 3600


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "proj"
    for rel, text in {"src/a.txt": "alpha\n", "src/sub/b.txt": "beta\n", "other/x": "x"}.items():
        (r / rel).parent.mkdir(parents=True, exist_ok=True)
        (r / rel).write_text(text)
        os.utime(r / rel, (OLD, OLD))
    return r


def _plan(
    root: Path, steps: dict[str, dict[str, Any]], platforms: tuple[str, ...] = ("amd64",)
) -> Plan:
    full = {sid: {"kind": "shell", "src": "src", **f} for sid, f in steps.items()}
    recipe = from_dict(
        {"project": {"name": "t", "platforms": list(platforms)}, "steps": full},
        file=root / "plan.toml",
    )
    return plan_of(recipe, environ={"PATH": os.environ["PATH"]})


def _run(
    p: Plan, store: Store, events: list[StepEvent] | None = None, **kw: Any
) -> tuple[RunResult, dict[NodeId, Entry]]:
    emit = events.append if events is not None else (lambda e: None)
    executor = executor_for(p, store, {}, store.root / "toolcache", emit)
    return execute_plan(p, executor, on_event=emit, **kw)


def statuses(result: RunResult) -> dict[str, str]:
    return {str(s.node): s.status for s in result.steps}


SH = ["sh", "-c"]
CHAIN = {
    "gen": {"command": [*SH, "cat a.txt sub/b.txt > gen.txt"], "outputs": ["gen.txt"],
            "platform_independent": True},
    "use": {"deps": ["gen"], "command": [*SH, "cat deps/gen/gen.txt > use.txt"],
            "outputs": ["use.txt"]},
}


def test_first_run_builds_second_is_cached_with_same_keys(root: Path, store: Store) -> None:
    p = _plan(root, CHAIN)
    first, entries = _run(p, store)
    assert statuses(first) == {"gen": "built", "use@linux/amd64": "built"}
    second, _ = _run(p, store)
    assert statuses(second) == {"gen": "cached", "use@linux/amd64": "cached"}
    assert [s.key for s in first.steps] == [s.key for s in second.steps]
    assert first.step("use", "linux/amd64").outputs == {
        "use.txt": entries[NodeId("use", "linux/amd64")].digests()["use.txt"]
    }
    assert len(store.keys()) == 2
    assert [p.name for p in (store.root / "tmp").iterdir()] == []  # work dirs removed


def test_work_dir_holds_only_declared_inputs_and_deps_outputs(root: Path, store: Store) -> None:
    p = _plan(root, {
        **CHAIN,
        "look": {"deps": ["gen"], "outputs": ["listing.txt"],
                 "command": [*SH, "find . -type f ! -path './.tmp/*' | sort > $TMPDIR/l; "
                                  "mv $TMPDIR/l listing.txt"]},
    })
    result, entries = _run(p, store)
    assert result.ok
    dest = root.parent / "out"
    store.materialize(entries[NodeId("look", "linux/amd64")], dest)
    assert (dest / "listing.txt").read_text().split() == [
        "./.crossplan.log", "./a.txt", "./deps/gen/gen.txt", "./sub/b.txt",
    ]


def test_a_failing_step_is_not_cached_and_its_dependents_are_skipped(
    root: Path, store: Store
) -> None:
    p = _plan(root, {
        "bad": {"command": [*SH, "echo visible-in-tail; exit 3"], "outputs": ["o"]},
        "after": {"deps": ["bad"], "command": ["true"]},
    })
    result, entries = _run(p, store)
    assert statuses(result) == {"bad@linux/amd64": "failed", "after@linux/amd64": "skipped"}
    bad = result.step("bad", "linux/amd64")
    assert bad.error is not None
    assert "command exited with status 3" in bad.error
    assert "visible-in-tail" in bad.error
    assert store.keys() == []
    assert entries == {}
    assert not result.ok
    again, _ = _run(p, store)
    assert again.step("bad", "linux/amd64").status == "failed"  # retried, not cached


def test_exit_zero_without_declared_outputs_fails_and_is_not_cached(
    root: Path, store: Store
) -> None:
    p = _plan(root, {"lazy": {"command": [*SH, "echo made > one.txt"],
                              "outputs": ["one.txt", "two.txt"]}})
    result, _ = _run(p, store)
    step = result.step("lazy", "linux/amd64")
    assert step.status == "failed"
    assert step.error is not None and "did not produce declared output 'two.txt'" in step.error
    assert store.keys() == []


def test_without_keep_going_unstarted_independent_steps_are_skipped(
    root: Path, store: Store
) -> None:
    steps = {
        "a_bad": {"command": [*SH, "exit 1"]},
        "b_ok": {"deps": [], "command": [*SH, "echo ok > ok"], "outputs": ["ok"]},
    }
    p = _plan(root, steps)
    result, _ = _run(p, store, jobs=1)
    assert statuses(result) == {"a_bad@linux/amd64": "failed", "b_ok@linux/amd64": "skipped"}
    kept, _ = _run(p, store, jobs=1, keep_going=True)
    assert statuses(kept) == {"a_bad@linux/amd64": "failed", "b_ok@linux/amd64": "built"}


def test_early_cutoff_identical_dep_output_keeps_dependents_cached(
    root: Path, store: Store
) -> None:
    _run(_plan(root, CHAIN), store)
    tweaked = {**CHAIN, "gen": {**CHAIN["gen"],
                                "command": [*SH, "cat a.txt sub/b.txt > gen.txt # reworded"]}}
    result, _ = _run(_plan(root, tweaked), store)
    assert statuses(result) == {"gen": "built", "use@linux/amd64": "cached"}


def test_changed_dep_output_rebuilds_dependents(root: Path, store: Store) -> None:
    _run(_plan(root, CHAIN), store)
    (root / "src/a.txt").write_text("ALPHA\n")
    result, _ = _run(_plan(root, CHAIN), store)
    assert statuses(result) == {"gen": "built", "use@linux/amd64": "built"}


def test_corrupt_blob_warns_and_rebuilds(root: Path, store: Store) -> None:
    p = _plan(root, CHAIN)
    _, entries = _run(p, store)
    blob = store.blob_path(entries[NodeId("gen", "any")].files[0].digest)
    os.chmod(blob, 0o644)
    blob.write_bytes(b"tampered")
    events: list[StepEvent] = []
    result, _ = _run(p, store, events)
    assert statuses(result) == {"gen": "built", "use@linux/amd64": "cached"}
    warnings = [e for e in events if e.kind == "warning"]
    assert [str(w.node) for w in warnings] == ["gen"]
    assert "failed verification" in warnings[0].message
    assert store.verify_blob(blob.name)


def test_events_follow_the_run(root: Path, store: Store) -> None:
    p = _plan(root, CHAIN)
    events: list[StepEvent] = []
    _run(p, store, events)
    assert [(e.kind, str(e.node)) for e in events] == [
        ("started", "gen"), ("finished", "gen"),
        ("started", "use@linux/amd64"), ("finished", "use@linux/amd64"),
    ]
    events.clear()
    _run(p, store, events)
    assert [e.kind for e in events] == ["cached", "cached"]


def test_missing_program_aborts_the_run_as_an_environment_problem(
    root: Path, store: Store
) -> None:
    p = _plan(root, {"x": {"command": ["no-such-program-for-crossplan-tests"]}})
    with pytest.raises(EnvironmentProblem, match="no-such-program-for-crossplan-tests"):
        _run(p, store)
    assert store.keys() == []


def test_explain_records_are_written_for_built_and_cached_nodes(root: Path, store: Store) -> None:
    p = _plan(root, CHAIN)
    result, _ = _run(p, store)
    rec = store.last_record("use@linux/amd64")
    assert rec is not None
    assert rec["key"] == result.step("use", "linux/amd64").key
    assert rec["inputs"] == p.nodes[NodeId("use", "linux/amd64")].inputs.as_map()  # type: ignore[union-attr]
    assert set(rec["deps"]) == {"gen"}


def test_keep_going_builds_what_does_not_depend_on_the_failure(root: Path, store: Store) -> None:
    p = _plan(root, {
        "a": {"command": [*SH, "echo a > a.txt"], "outputs": ["a.txt"]},
        "b": {"deps": ["a"], "command": [*SH, "exit 1"]},
        "c": {"deps": ["a"], "command": [*SH, "echo c > c.txt"], "outputs": ["c.txt"]},
        "d": {"deps": ["b", "c"], "command": ["true"]},
        "e": {"deps": ["d"], "command": ["true"]},
        "f": {"deps": ["c"], "command": [*SH, "echo f > f.txt"], "outputs": ["f.txt"]},
    })
    result, _ = _run(p, store, keep_going=True, jobs=2)
    assert {k.split("@")[0]: v for k, v in statuses(result).items()} == {
        "a": "built", "b": "failed", "c": "built", "d": "skipped", "e": "skipped", "f": "built",
    }
    assert result.step("e", "linux/amd64").error == "a dependency failed"
    assert [str(s.node) for s in result.steps] == [str(n) for n in p.order]
