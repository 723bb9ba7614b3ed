"""Layers started early: the scheduler tells an image node's backend of each dependency built
while others still run; the oci backend compresses that platform's layers meanwhile and the
image node takes them, with the same bytes as building them itself."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from testkit import plan_of

from crossplan.api.running import executor_for
from crossplan.cache.store import Entry, Store
from crossplan.images import backends_for, close_backends, prepare_images
from crossplan.planner import NodeId, Plan
from crossplan.planner.plan import PlannedNode
from crossplan.recipes import from_dict
from crossplan.runner.scheduler import execute_plan

# amd64's output is ready at once, arm64's a second later: the image waits for arm64.
SLOW_ARM = ('if [ "$TARGETARCH" = arm64 ]; then sleep 1; fi; '
            'yes "$TARGETARCH" | head -c 3000000 > app.bin')
STEPS: dict[str, Any] = {
    "app": {"kind": "shell", "src": "src", "command": ["sh", "-c", SLOW_ARM],
            "outputs": ["app.bin"]},
    "image": {"kind": "image", "base": "scratch",
              "copy": [{"from": "app", "dest": "/srv/"}]},
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.txt").write_text("a\n")
    old = time.time() - 3600
    os.utime(root / "src" / "a.txt", (old, old))
    return root


def _plan(root: Path) -> Plan:
    recipe = from_dict({"project": {"name": "t", "platforms": ["amd64", "arm64"]},
                        "steps": STEPS}, file=root / "plan.toml")
    return plan_of(recipe, environ={"PATH": os.environ["PATH"]})


def _run(p: Plan, store: Store, *, early: bool) -> tuple[Any, dict[NodeId, Entry]]:
    backends = backends_for(p.recipe, store, 0)
    executor = executor_for(p, store, backends, store.root / "toolcache", lambda e: None)
    try:
        return execute_plan(p, executor, jobs=2,
                            prepare=prepare_images(backends) if early else None)
    finally:
        close_backends(backends)


def _counting(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[str]:
    calls: list[str] = []
    real = module.build_layer

    def build_layer(entries: Any, *, mtime: int, spool: Any = None) -> Any:
        calls.append(next(e.path for e in entries if e.type == "file"))
        return real(entries, mtime=mtime, spool=spool)

    monkeypatch.setattr(module, "build_layer", build_layer)
    return calls


def test_scheduler_tells_a_waiting_node_of_each_dep_built(project: Path, tmp_path: Path) -> None:
    p = _plan(project)
    heard: list[tuple[str, frozenset[str]]] = []

    def prepare(pn: PlannedNode, deps: Mapping[NodeId, Entry]) -> None:
        heard.append((str(pn.id), frozenset(str(d) for d in deps)))

    with closing(Store(tmp_path / "store")) as store:
        executor = executor_for(p, store, backends_for(p.recipe, store, 0),
                                store.root / "toolcache", lambda e: None)
        result, _ = execute_plan(p, executor, jobs=2, prepare=prepare)
        assert result.ok
        # amd64 was built while arm64 still ran; then arm64, before the image started.
        assert heard == [("image", frozenset({"app@linux/amd64"})),
                         ("image", frozenset({"app@linux/amd64", "app@linux/arm64"}))]
        heard.clear()
        again, _ = execute_plan(p, executor, jobs=2, prepare=prepare)
        assert {s.status for s in again.steps} == {"cached"}
        assert heard == []  # cached deps start nothing: the image is most likely cached too


def test_image_takes_the_layer_started_early_with_the_same_bytes(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from crossplan.backends.oci import image as oci_image
    from crossplan.images import oci as oci_backend

    early = _counting(monkeypatch, oci_backend)  # what prepare starts
    in_node = _counting(monkeypatch, oci_image)  # what the image node builds itself
    p = _plan(project)
    with closing(Store(tmp_path / "a")) as store:
        result, entries = _run(p, store, early=True)
        assert result.ok
        assert early == ["/srv/app.bin"] * 2  # amd64's while arm64 slept, then arm64's
        assert in_node == []  # both were taken
        with_early = entries[NodeId("image", "any")].digests()
    early.clear()
    in_node.clear()
    with closing(Store(tmp_path / "b")) as store:
        result, entries = _run(p, store, early=False)
        assert result.ok
        assert early == [] and len(in_node) == 2
        assert entries[NodeId("image", "any")].digests() == with_early
