"""Smoke runs as Actions for a REAPI cluster: on the target's ISA, the binary's status and
output as outputs, static binaries remote and dynamic ones here (a fake executor injected)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from test_elf import elf

from crossplan.cache.store import Entry, OutputFile, Store
from crossplan.executors.protocol import ActionResult, dep_outputs
from crossplan.executors.result import RunResult, StepResult
from crossplan.planner.actions import Action
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import make_plan
from crossplan.planner.smoke import SMOKE_CODE, SMOKE_OUT, smoke_action
from crossplan.platforms import Platform
from crossplan.probe import gather
from crossplan.recipes.models import Recipe

ARM64 = Platform.parse("linux/arm64")
NODE = NodeId("app", "linux/arm64")
EM_AARCH64 = 183


def test_the_smoke_action_asks_for_the_target_isa_and_keys_on_binary_and_args() -> None:
    a = smoke_action(NODE, ARM64, "bin/app", ["--version"])
    assert a.requirements.as_json() == {"OSFamily": "linux", "ISA": "aarch64"}
    assert a.outputs == (SMOKE_OUT, SMOKE_CODE) and a.deps[0].node == NODE
    assert a.commands[0][-1] == "--version" and "bin/app" in a.commands[0][2]
    deps = {NODE: {"bin/app": "a" * 64}}
    k = a.key(deps)
    assert k == smoke_action(NODE, ARM64, "bin/app", ["--version"]).key(deps)
    assert k != smoke_action(NODE, ARM64, "bin/app", ["-v"]).key(deps)
    assert k != a.key({NODE: {"bin/app": "b" * 64}})  # another binary, another run
    amd = smoke_action(NodeId("app", "linux/amd64"), Platform.parse("linux/amd64"), "bin/app", [])
    assert amd.requirements.isa == "x86-64"


class FakeCluster:
    """Runs nothing: answers each smoke Action with the given status and output."""

    def __init__(self, store: Store, code: int, output: str) -> None:
        self.store, self.code, self.output = store, code, output
        self.seen: list[Action] = []

    def __call__(self, action: Action, deps: Mapping[NodeId, Entry]) -> ActionResult:
        self.seen.append(action)
        files = []
        outs = ((SMOKE_OUT, self.output.encode()), (SMOKE_CODE, f"{self.code}\n".encode()))
        for name, data in outs:
            files.append(OutputFile(name, self.store.put_bytes(data), 0o644, len(data)))
        key = action.key(dep_outputs(deps))
        entry = Entry(key, str(action.node), tuple(files), None, 0.1, time.time(),
                      {"remote": {"worker": "arm-1", "cached": False}})
        return ActionResult(key, entry, "built", 0.1)


def _setup(tmp_path: Path, binary: bytes, expect: str) -> tuple[Store, object, RunResult,
                                                                   dict[NodeId, Entry]]:
    recipe = Recipe.model_validate({
        "project": {"name": "x", "platforms": ["linux/arm64"]},
        "steps": {"app": {"kind": "shell", "command": ["true"], "outputs": ["bin/app"],
                          "smoke": ["--version"], "smoke_expect": expect}},
    })
    plan = make_plan(recipe, None, gather(recipe, None, environ={}))
    store = Store(tmp_path / "store")
    blob = store.put_bytes(binary)
    entry = Entry("k", str(NODE), (OutputFile("bin/app", blob, 0o755, len(binary)),), None,
                  0.1, time.time(), {})
    result = RunResult(steps=(StepResult(NODE, "built", "k", 0.1),))
    return store, plan, result, {NODE: entry}


@pytest.mark.parametrize(("code", "output", "status", "smoke"), [
    (0, "app 1.0\n", "built", "ok: app 1.0 (on arm-1)"),
    (0, "something else\n", "failed", "expected 'app 1.0'"),
    (3, "boom\n", "failed", "exited 3: boom"),
])
def test_a_static_binary_is_smoke_tested_on_the_cluster(
    tmp_path: Path, code: int, output: str, status: str, smoke: str,
) -> None:
    from crossplan.checks.smoke_run import smoke_test

    store, plan, result, entries = _setup(tmp_path, elf(EM_AARCH64), "app 1.0")
    cluster = FakeCluster(store, code, output)
    got = smoke_test(plan, store, result, entries, remote=cluster)  # type: ignore[arg-type]
    assert len(cluster.seen) == 1 and cluster.seen[0].requirements.isa == "aarch64"
    step = got.steps[0]
    assert step.status == status and step.smoke is not None and smoke in step.smoke
    store.close()


def test_a_dynamic_binary_is_not_sent(tmp_path: Path) -> None:
    """Its libraries would be the worker's, not the image's: it runs here (which, without a
    cross libc or QEMU in a unit test, may fail: the point is that the cluster saw nothing)."""
    from crossplan.checks.smoke_run import smoke_test

    store, plan, result, entries = _setup(
        tmp_path, elf(EM_AARCH64, interp="/lib/ld-linux-aarch64.so.1"), "app 1.0")
    cluster = FakeCluster(store, 0, "app 1.0\n")
    smoke_test(plan, store, result, entries, remote=cluster)  # type: ignore[arg-type]
    assert cluster.seen == []
    store.close()
