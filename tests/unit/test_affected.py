"""Affected targets, pure parts: static and snapshot keys, the comparison with a baseline,
the image label normalisation. Against git revisions and through the CLI:
tests/integration/test_affected_git.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from affected_kit import API_NODES, FILES, LIB_NODES, write
from testkit import plan_of

from crossplan.inspect.affected import normalize
from crossplan.planner.affected import NodeState, compare, snapshot_keys, static_keys
from crossplan.recipes import load


def test_static_keys_change_for_the_node_and_its_dependents_only(tmp_path: Path) -> None:
    for rel, text in FILES.items():
        write(tmp_path / "a", rel, text)
    before = static_keys(plan_of(load(tmp_path / "a"), environ={}))
    write(tmp_path / "a", "libs/core/src/core.txt", "changed\n")
    plan = plan_of(load(tmp_path / "a"), environ={})
    after = static_keys(plan)
    assert after == plan.input_keys()
    changed = {str(n) for n in after if after[n] != before[n]}
    assert changed == LIB_NODES | API_NODES


def test_snapshot_keys_need_every_dep() -> None:
    snap = {
        "a": NodeState({"x": 1}),
        "b": NodeState({"y": 2}, deps=("a",)),
        "c": NodeState({"z": 3}, deps=("missing",)),
    }
    keys = snapshot_keys(snap)
    assert keys["a"] and keys["b"] and keys["c"] is None


def test_compare_with_a_baseline_missing_a_dep(tmp_path: Path) -> None:
    for rel, text in FILES.items():
        write(tmp_path / "a", rel, text)
    plan = plan_of(load(tmp_path / "a"), environ={})
    from crossplan.planner.affected import snapshot

    base = snapshot(plan)
    del base["libs/core:lib@linux/amd64"]
    found, removed = compare(plan, base)
    assert {str(a.node) for a in found} == {
        "libs/core:lib@linux/amd64", "services/api:bin@linux/amd64", "services/api:image"}
    assert removed == []


@pytest.mark.parametrize(
    ("kind", "pin", "want"),
    [
        ("image", '{"backend": "oci", "base": "scratch", "layers": "gzip", "revision": "abc", '
                  '"source": "git@x:y"}',
         '{"backend": "oci", "base": "scratch", "layers": "gzip"}'),
        ("image", '{"base": "scratch", "revision": "", "source": ""}', '{"base": "scratch"}'),
        ("go", "go1.27.3;revision=abc;source=x", "go1.27.3;revision=abc;source=x"),
        ("go", '{"revision": "abc"}', '{"revision": "abc"}'),  # only an image's are labels
        ("image", '{"backend": "buildx"}', '{"backend": "buildx"}'),
        ("image", "not json {", "not json {"),
    ],
)
def test_normalize_drops_only_the_images_git_labels(kind: str, pin: str, want: str) -> None:
    assert normalize(kind, {"toolchain": pin, "k": 1}) == {"toolchain": want, "k": 1}
