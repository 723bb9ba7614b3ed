"""Content-addressed keys: what changes a key, and (as important) what doesn't."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from testkit import plan_of

from crossplan.planner import NodeId, Plan
from crossplan.planner.keys import KEY_SCHEMA, canonical
from crossplan.probe.digest import StatMemo
from crossplan.recipes import from_dict, load

ORDERED = """
[project]
name = "keys"
platforms = ["linux/amd64", "linux/arm64"]

[steps.gen]
description = "concatenate"
kind = "shell"
src = "gen/"
command = ["sh", "-c", "cat a.txt b.txt > greeting.txt"]
outputs = ["greeting.txt"]
env = { A = "1", B = "2" }
platform_independent = true

[steps.count]
kind = "shell"
src = "words/"
command = ["sh", "-c", "wc -l < list.txt > count.txt"]
outputs = ["count.txt"]
platform_independent = true

[steps.report]
kind = "shell"
src = "."
exclude = ["gen/", "words/", "plan.toml"]
deps = ["gen", "count"]
command = ["sh", "-c", "cat deps/gen/greeting.txt > report.txt"]
outputs = ["report.txt"]
"""

# The same recipe: tables, keys inside tables, inline-table keys and deps reordered.
REORDERED = """
[steps.report]
outputs = ["report.txt"]
deps = ["count", "gen"]
command = ["sh", "-c", "cat deps/gen/greeting.txt > report.txt"]
exclude = ["gen/", "words/", "plan.toml"]
src = "."
kind = "shell"

[steps.count]
platform_independent = true
outputs = ["count.txt"]
command = ["sh", "-c", "wc -l < list.txt > count.txt"]
src = "words/"
kind = "shell"

[project]
platforms = ["linux/amd64", "linux/arm64"]
name = "keys"

[steps.gen]
platform_independent = true
env = { B = "2", A = "1" }
outputs = ["greeting.txt"]
command = ["sh", "-c", "cat a.txt b.txt > greeting.txt"]
src = "gen/"
kind = "shell"
description = "concatenate"
"""

OLD = time.time() - 3600


def _project(root: Path, toml: str = ORDERED) -> Path:
    files = {
        "gen/a.txt": "hello\n",
        "gen/b.txt": "world\n",
        "words/list.txt": "one\ntwo\nthree\n",
        "notes.txt": "report input\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
        os.utime(root / rel, (OLD, OLD))
    (root / "plan.toml").write_text(toml)
    return root


def _plan(root: Path, platforms: str | None = None, **environ: str) -> Plan:
    memo = StatMemo(root.parent / (root.name + "-memo"))  # outside: report's src is "."
    return plan_of(load(root), platforms, environ=environ, memo=memo)


def keys(p: Plan) -> dict[str, str]:
    """Every node's full key, each dep's outputs standing in as a digest of the dep's key
    (the rebuild-everything-downstream case, no early cutoff)."""
    out: dict[NodeId, str] = {}
    for node, pn in p.nodes.items():
        out[node] = pn.key({d: {"out": out[d]} for d in pn.deps})
    return {str(n): k for n, k in out.items()}


def changed(a: dict[str, str], b: dict[str, str]) -> set[str]:
    assert a.keys() == b.keys()
    return {n for n in a if a[n] != b[n]}


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    return _project(tmp_path / "p")


def test_keys_are_deterministic_across_copies(proj: Path, tmp_path: Path) -> None:
    other = _project(tmp_path / "elsewhere")
    assert keys(_plan(proj)) == keys(_plan(proj)) == keys(_plan(other))


def test_reordering_toml_keys_and_tables_changes_no_key(proj: Path, tmp_path: Path) -> None:
    reordered = _project(tmp_path / "q", REORDERED)
    assert keys(_plan(reordered)) == keys(_plan(proj))


def test_touching_mtimes_changes_no_key(proj: Path) -> None:
    before = keys(_plan(proj))
    for p in proj.rglob("*"):
        os.utime(p, (OLD + 100, OLD + 100))
    assert keys(_plan(proj)) == before
    for p in proj.rglob("*"):
        os.utime(p)  # now
    assert keys(_plan(proj)) == before


def test_a_copied_tree_with_new_inodes_changes_no_key(proj: Path, tmp_path: Path) -> None:
    before = keys(_plan(proj))
    shutil.move(proj / "gen", tmp_path / "gen-moved")
    shutil.copytree(tmp_path / "gen-moved", proj / "gen")
    assert keys(_plan(proj)) == before


@pytest.mark.parametrize(
    ("path", "affected"),
    [
        ("gen/a.txt", {"gen", "report@linux/amd64", "report@linux/arm64"}),
        ("words/list.txt", {"count", "report@linux/amd64", "report@linux/arm64"}),
        ("notes.txt", {"report@linux/amd64", "report@linux/arm64"}),
    ],
)
def test_one_changed_byte_changes_exactly_the_affected_keys(
    proj: Path, path: str, affected: set[str]
) -> None:
    before = keys(_plan(proj))
    data = bytearray((proj / path).read_bytes())
    data[0] ^= 0x01
    (proj / path).write_bytes(bytes(data))
    assert changed(before, keys(_plan(proj))) == affected


def test_amd64_and_arm64_keys_differ(proj: Path) -> None:
    k = keys(_plan(proj))
    assert k["report@linux/amd64"] != k["report@linux/arm64"]
    p = _plan(proj)
    amd = p.nodes[NodeId("report", "linux/amd64")].components
    arm = p.nodes[NodeId("report", "linux/arm64")].components
    assert changed_components(amd, arm) == {"platform"}


def changed_components(a: object, b: object) -> set[str]:
    assert isinstance(a, dict) and isinstance(b, dict)
    return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}


def test_platform_independent_keys_do_not_depend_on_the_target_set(proj: Path) -> None:
    both = keys(_plan(proj))
    one = keys(_plan(proj, "linux/arm64"))
    assert set(one) == {"gen", "count", "report@linux/arm64"}
    assert one["gen"] == both["gen"]
    assert one["count"] == both["count"]
    assert one["report@linux/arm64"] == both["report@linux/arm64"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('description = "concatenate"', 'description = "a different label"'),
        ('description = "concatenate"', ""),
    ],
)
def test_description_changes_no_key(proj: Path, old: str, new: str) -> None:
    before = keys(_plan(proj))
    (proj / "plan.toml").write_text(ORDERED.replace(old, new))
    assert keys(_plan(proj)) == before


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("cat a.txt b.txt > greeting.txt", "cat b.txt a.txt > greeting.txt"),
        ('env = { A = "1", B = "2" }', 'env = { A = "1", B = "3" }'),
        ('outputs = ["greeting.txt"]', 'outputs = ["greeting.txt", "a.txt"]'),
    ],
)
def test_definition_changes_change_the_step_and_dependents(
    proj: Path, old: str, new: str
) -> None:
    before = keys(_plan(proj))
    assert old in ORDERED
    (proj / "plan.toml").write_text(ORDERED.replace(old, new))
    assert changed(before, keys(_plan(proj))) == {"gen", "report@linux/amd64", "report@linux/arm64"}


def test_source_date_epoch_and_allowlisted_env_enter_keys(proj: Path) -> None:
    base = keys(_plan(proj))
    assert changed(base, keys(_plan(proj, SOURCE_DATE_EPOCH="1700000000"))) == set(base)
    assert changed(base, keys(_plan(proj, GOPROXY="off"))) == set(base)
    assert keys(_plan(proj, UNRELATED_HOST_VAR="x")) == base


def test_early_cutoff_a_dep_key_change_with_same_outputs_keeps_the_key(proj: Path) -> None:
    """Dependents are keyed on their deps' output digests, not on the deps' keys."""
    p1 = _plan(proj)
    (proj / "plan.toml").write_text(ORDERED.replace("> greeting.txt", "> greeting.txt # v2"))
    p2 = _plan(proj)
    gen, rep = NodeId("gen", "any"), NodeId("report", "linux/amd64")
    assert p1.nodes[gen].components != p2.nodes[gen].components
    outputs = {gen: {"greeting.txt": "d1"}, NodeId("count", "any"): {"count.txt": "d2"}}
    assert p1.nodes[rep].key(outputs) == p2.nodes[rep].key(outputs)
    other = {**outputs, gen: {"greeting.txt": "d3"}}
    assert p1.nodes[rep].key(other) != p1.nodes[rep].key(outputs)


def test_components_name_the_schema_and_exclude_cosmetic_and_location_fields(proj: Path) -> None:
    comp = _plan(proj).nodes[NodeId("gen", "any")].components
    assert comp["schema"] == KEY_SCHEMA
    assert comp["kind"] == "shell"
    assert comp["platform"] == "any"
    for field in ("description", "src", "deps", "exclude", "platforms"):
        assert field not in comp["step"]
    assert comp["step"]["command"] == ["sh", "-c", "cat a.txt b.txt > greeting.txt"]


def test_canonical_encoding_sorts_keys() -> None:
    assert canonical({"b": 1, "a": [2, {"d": 1, "c": 0}]}) == b'{"a":[2,{"c":0,"d":1}],"b":1}'


def test_steps_sharing_an_input_tree_hash_it_once(
    proj: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import crossplan.probe.trees as plan_mod

    calls: list[Path] = []
    real = plan_mod.tree_digest

    def counting(root: Path, **kw: Any) -> Any:
        calls.append(root)
        return real(root, **kw)

    monkeypatch.setattr(plan_mod, "tree_digest", counting)
    step = {"kind": "shell", "src": "gen/", "command": ["true"]}
    recipe = from_dict(
        {
            "project": {"name": "share"},
            "steps": {
                "a": step, "b": {**step, "env": {"X": "1"}},
                "c": {**step, "exclude": ["b.txt"]},
            },
        },
        file=proj / "plan.toml",
    )
    p = plan_of(recipe, environ={})
    assert len(calls) == 2  # (gen/, no exclude) once; (gen/, exclude b.txt) once
    a, c = (p.nodes[NodeId(s, "linux/amd64")] for s in ("a", "c"))
    assert a.inputs is not None and c.inputs is not None
    assert set(a.inputs.as_map()) == {"a.txt", "b.txt"}
    assert set(c.inputs.as_map()) == {"a.txt"}
    assert a.components["inputs"] != c.components["inputs"]


def test_golden_keys(proj: Path) -> None:
    """Keys are a stored contract: if this changes, bump KEY_SCHEMA on purpose (old store
    entries become unreachable) and update these values."""
    assert KEY_SCHEMA == 2
    assert keys(_plan(proj)) == {
        "count": "ed9903ddade8c37b80d8a5d5050e6589524ba291888406fd62d34287b0cccbc5",
        "gen": "1bb4a376dfbe107aec6340541aa376db2cb11beda635e208e3f091490920da61",
        "report@linux/amd64": "ae704cb89c1159c1dcc16436891cba6f033ad0a28eb1ead52be7678a5a397012",
        "report@linux/arm64": "42690594a14362e72d03b97545e7317156feea4cda2a4d639d4ff4e086ef9953",
    }
