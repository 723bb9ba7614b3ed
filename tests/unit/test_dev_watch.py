"""The dev loop without a watcher: fake change batches and a fake build drive api.dev.watch;
run_host_first runs the build machine's nodes first (a fake run function records the order);
the summary lines."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest
from testkit import plan_of

from crossplan.api.dev import Rebuild, run_host_first, watch, watch_paths
from crossplan.api.running import RunOptions
from crossplan.errors import StepFailed
from crossplan.executors.result import RunResult, StepResult
from crossplan.planner import NodeId, Plan
from crossplan.recipes import from_dict, load
from crossplan.recipes.models import Recipe

PLAN = """\
[project]
name = "w"
platforms = ["linux/amd64", "linux/arm64"]

[steps.gen]
kind = "shell"
src = "src/"
command = ["sh", "-c", "cat a.txt > out.txt"]
outputs = ["out.txt"]

[steps.other]
kind = "shell"
src = "other/"
command = ["true"]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    for rel, text in {"plan.toml": PLAN, "src/a.txt": "a", "other/b.txt": "b",
                      "src/sub/c.txt": "c"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


class FakeBuild:
    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[Recipe] = []
        self.fail_at = fail_at

    def __call__(self, recipe: Recipe) -> tuple[RunResult, float | None]:
        self.calls.append(recipe)
        if len(self.calls) - 1 == self.fail_at:
            raise StepFailed("boom", step="gen")
        steps = (StepResult(NodeId("gen", "linux/amd64"), "built", "k1", 0.1),
                 StepResult(NodeId("gen", "linux/arm64"), "cached", "k2", 0.0))
        return RunResult(steps, seconds=0.1), 0.05


def batches(*items: Collection[Path]) -> object:
    seen: list[tuple[Path, ...]] = []

    def source(paths: tuple[Path, ...]) -> Iterator[Collection[Path]]:
        seen.append(paths)
        yield from items

    source.seen = seen  # type: ignore[attr-defined]
    return source


def test_watch_paths(project: Path) -> None:
    paths = watch_paths(load(project))
    assert paths == tuple(sorted(
        [(project / "plan.toml").resolve(), (project / "src").resolve(),
         (project / "other").resolve()]))


def test_two_batches_two_rebuilds(project: Path) -> None:
    build = FakeBuild()
    source = batches({project / "src" / "a.txt"},
                     {project / "other" / "b.txt", project / "src" / "sub" / "c.txt"})
    seen: list[Rebuild] = []
    rounds = watch(project, source, build=build, on_rebuild=seen.append)  # type: ignore[arg-type]
    assert [r.iteration for r in rounds] == [0, 1, 2] and seen == rounds
    assert len(build.calls) == 3
    assert rounds[1].changed == ("src/a.txt",)
    assert rounds[2].changed == ("other/b.txt", "src/sub/c.txt")
    assert all(r.ok for r in rounds)
    assert rounds[0].summary().startswith("#0 first build: 1 built, 1 cached in ")
    assert rounds[1].summary().startswith("#1 src/a.txt changed: 1 built, 1 cached in ")
    assert rounds[1].summary().endswith("first: 0.05s)")
    assert rounds[2].as_json()["changed"] == ["other/b.txt", "src/sub/c.txt"]


def test_max_iterations_and_ignored_paths(project: Path) -> None:
    build = FakeBuild()
    export = project / "src" / "exported"
    source = batches({project / "elsewhere.txt"},  # not an input: no rebuild
                     {export / "gen" / "out.txt"},  # written by --export: ignored
                     {project / "src" / "a.txt"}, {project / "src" / "a.txt"})
    rounds = watch(project, source, RunOptions(export=export),  # type: ignore[arg-type]
                   build=build, max_iterations=1)
    assert [r.changed for r in rounds] == [(), ("src/a.txt",)]


def test_errors_are_reported_and_the_loop_goes_on(project: Path) -> None:
    build = FakeBuild(fail_at=1)
    (project / "plan.toml").write_text(PLAN)
    source = batches({project / "src" / "a.txt"}, {project / "src" / "a.txt"})
    rounds = watch(project, source, build=build)  # type: ignore[arg-type]
    assert [r.ok for r in rounds] == [True, False, True]
    assert rounds[1].summary().startswith("#1 src/a.txt changed: error: boom")
    assert rounds[1].as_json()["exit_code"] == 1


def test_a_broken_plan_toml_is_reported_then_fixed(project: Path) -> None:
    """An edit of plan.toml restarts the watcher (editors replace the file); a fixed recipe
    with a new src tree is watched there."""
    build = FakeBuild()
    toml = project / "plan.toml"
    calls: list[tuple[Path, ...]] = []

    def source(paths: tuple[Path, ...]) -> Iterator[Collection[Path]]:
        calls.append(paths)
        if len(calls) == 1:
            toml.write_text("[project\n")
            yield {toml}
        elif len(calls) == 2:
            toml.write_text(PLAN.replace('src = "other/"', 'src = "more/"'))
            (project / "more").mkdir()
            yield {toml}
        else:
            yield {project / "other" / "b.txt"}  # no longer an input
            yield {project / "more" / "x"}
        yield {project / "src" / "a.txt"}  # never read: the watcher restarted

    rounds = watch(project, source, build=build, max_iterations=3)
    assert [r.ok for r in rounds] == [True, False, True, True]
    assert rounds[1].error is not None and rounds[1].error.exit_code == 2
    assert len(calls) == 3 and calls[0] == calls[1]
    assert (project / "more").resolve() in calls[2]
    assert (project / "other").resolve() not in calls[2]
    assert rounds[3].changed == ("more/x",)


def _plan(root: Path, platforms: list[str], *, image: bool = True) -> Plan:
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "a.txt").write_text("a")
    recipe = from_dict({"project": {"name": "t", "platforms": platforms}, "steps": {
        "gen": {"kind": "shell", "src": "src", "command": ["true"]},
        **({"all": {"kind": "image", "base": "scratch", "copy": [{"from": "gen", "dest": "/"}]}}
           if image else {}),
    }}, file=root / "plan.toml")
    return plan_of(recipe, environ={"PATH": os.environ["PATH"]})


def test_run_host_first(tmp_path: Path) -> None:
    p = _plan(tmp_path, ["linux/amd64", "linux/arm64"])
    host = str(p.build_platform)
    calls: list[tuple[list[NodeId], RunOptions]] = []

    def run_fn(sub: Plan, opts: RunOptions, on_event: object) -> RunResult:
        calls.append((list(sub.nodes), opts))
        first = len(calls) == 1
        return RunResult(tuple(
            StepResult(n, "built" if first or n.platform != host else "cached", "k", 1.0)
            for n in sub.nodes), seconds=1.0 if first else 2.0)

    result, host_seconds = run_host_first(p, RunOptions(targets=["all"], push=True),
                                          run_fn=run_fn)
    assert [n.platform for n in calls[0][0]] == [host]
    assert not calls[0][1].push and calls[1][1].push  # publishing only once, at the end
    assert set(calls[1][0]) == set(p.nodes) and calls[1][1].targets == []
    assert {s.status for s in result.steps} == {"built"}  # host nodes: built, not cached
    assert host_seconds == 1.0 and result.seconds == 3.0


def test_run_host_first_stops_after_a_host_failure(tmp_path: Path) -> None:
    p = _plan(tmp_path, ["linux/amd64", "linux/arm64"])
    calls: list[Plan] = []

    def run_fn(sub: Plan, opts: RunOptions, on_event: object) -> RunResult:
        calls.append(sub)
        return RunResult(tuple(StepResult(n, "failed", None, 0.0) for n in sub.nodes))

    result, _ = run_host_first(p, run_fn=run_fn)
    assert len(calls) == 1
    assert {s.status for s in result.steps} == {"failed", "skipped"}
    assert len(result.steps) == len(p.nodes)


def test_run_host_first_single_run_without_other_platforms(tmp_path: Path) -> None:
    host = str(_plan(tmp_path, ["linux/amd64"]).build_platform)
    p = _plan(tmp_path, [host], image=False)
    calls: list[Plan] = []

    def run_fn(sub: Plan, opts: RunOptions, on_event: object) -> RunResult:
        calls.append(sub)
        return RunResult(())

    assert run_host_first(p, run_fn=run_fn)[1] is None
    assert len(calls) == 1
