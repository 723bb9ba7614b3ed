"""Expanding a recipe into (step, platform) nodes; cycles and impossible deps are RecipeErrors."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from testkit import plan_of

from crossplan.errors import EXIT_USAGE, RecipeError
from crossplan.planner import ANY, NodeId
from crossplan.planner.graph import expand
from crossplan.platforms import parse_platforms
from crossplan.recipes import Recipe, from_dict


def _recipe(tmp_path: Path, steps: dict[str, dict[str, Any]], **project: Any) -> Recipe:
    (tmp_path / "src").mkdir(exist_ok=True)
    full = {
        sid: {"kind": "shell", "src": "src", "command": ["true"], **fields}
        for sid, fields in steps.items()
    }
    return from_dict(
        {"project": {"name": "g", **project}, "steps": full}, file=tmp_path / "plan.toml"
    )


def _cycle(tmp_path: Path, steps: dict[str, dict[str, Any]]) -> RecipeError:
    recipe = _recipe(tmp_path, steps)
    with pytest.raises(RecipeError) as info:
        plan_of(recipe, environ={})
    assert info.value.exit_code == EXIT_USAGE
    assert info.value.file == str(tmp_path / "plan.toml")
    return info.value


def test_nodes_per_platform_and_one_for_platform_independent(tmp_path: Path) -> None:
    recipe = _recipe(
        tmp_path,
        {"gen": {"platform_independent": True}, "bin": {"deps": ["gen"]}, "app": {"deps": ["bin"]}},
    )
    g = expand(recipe, parse_platforms(["linux/amd64", "linux/arm64"]))
    assert set(g.nodes) == {
        NodeId("gen", ANY),
        NodeId("bin", "linux/amd64"),
        NodeId("bin", "linux/arm64"),
        NodeId("app", "linux/amd64"),
        NodeId("app", "linux/arm64"),
    }
    assert set(g.edges) == {
        (NodeId("gen", ANY), NodeId("bin", "linux/amd64")),
        (NodeId("gen", ANY), NodeId("bin", "linux/arm64")),
        (NodeId("bin", "linux/amd64"), NodeId("app", "linux/amd64")),
        (NodeId("bin", "linux/arm64"), NodeId("app", "linux/arm64")),
    }


def test_step_platforms_override_narrows_the_targets(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, {"only": {"platforms": ["arm64"]}, "all": {}})
    p = plan_of(recipe, ["linux/amd64", "linux/arm64"], environ={})
    assert [str(n) for n in p.nodes] == ["all@linux/amd64", "all@linux/arm64", "only@linux/arm64"]


def test_plan_order_is_topological(tmp_path: Path) -> None:
    recipe = _recipe(
        tmp_path, {"z": {}, "y": {"deps": ["z"]}, "a": {"deps": ["y"]}}, platforms=["amd64"]
    )
    order = [n.step for n in plan_of(recipe, environ={}).order]
    assert order == ["z", "y", "a"]


def test_two_step_cycle_prints_the_loop(tmp_path: Path) -> None:
    exc = _cycle(tmp_path, {"a": {"deps": ["b"]}, "b": {"deps": ["a"]}})
    assert exc.message in ("dependency cycle: a -> b -> a", "dependency cycle: b -> a -> b")
    assert exc.step in ("a", "b")


def test_longer_cycle_prints_every_step_of_the_loop(tmp_path: Path) -> None:
    exc = _cycle(
        tmp_path,
        {"a": {"deps": ["c"]}, "b": {"deps": ["a"]}, "c": {"deps": ["b"]}, "d": {"deps": ["a"]}},
    )
    loop = exc.message.removeprefix("dependency cycle: ").split(" -> ")
    assert loop[0] == loop[-1]
    assert sorted(loop[:-1]) == ["a", "b", "c"]
    # each printed edge is a real dep edge: x -> y means y depends on x
    deps = {"a": "c", "b": "a", "c": "b"}
    for x, y in itertools.pairwise(loop):
        assert deps[y] == x


def test_self_dependency_is_a_cycle(tmp_path: Path) -> None:
    assert _cycle(tmp_path, {"a": {"deps": ["a"]}}).message == "dependency cycle: a -> a"


def test_platform_independent_step_cannot_depend_on_per_platform_step(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, {"bin": {}, "pkg": {"deps": ["bin"], "platform_independent": True}})
    with pytest.raises(RecipeError) as info:
        plan_of(recipe, environ={})
    assert info.value.step == "pkg"
    assert "per-platform step 'bin'" in info.value.message


def test_dep_missing_for_a_platform(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, {"lib": {"platforms": ["linux/amd64"]}, "app": {"deps": ["lib"]}})
    with pytest.raises(RecipeError) as info:
        plan_of(recipe, ["linux/amd64", "linux/arm64"], environ={})
    assert info.value.step == "app"
    assert info.value.message == "dep 'lib' is not built for linux/arm64"


def test_unknown_cli_platform_is_a_recipe_error_with_hint(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, {"a": {}})
    with pytest.raises(RecipeError) as info:
        plan_of(recipe, "linux/amd64,linux/arm65", environ={})
    assert info.value.hint == "did you mean 'linux/arm64'?"


def test_missing_src_directory(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, {"a": {"src": "nope/"}})
    with pytest.raises(RecipeError) as info:
        plan_of(recipe, environ={})
    assert info.value.step == "a"
    assert "src 'nope/' does not exist" in info.value.message


def test_src_symlink_escaping_the_project(tmp_path: Path) -> None:
    outside = tmp_path.parent / (tmp_path.name + "-outside")
    outside.mkdir()
    (tmp_path / "esc").symlink_to(outside)
    recipe = _recipe(tmp_path, {"a": {"src": "esc"}})
    with pytest.raises(RecipeError) as info:
        plan_of(recipe, environ={})
    assert "escapes the project" in info.value.message


def test_subplan_keeps_targets_and_their_ancestors(tmp_path: Path) -> None:
    recipe = _recipe(
        tmp_path,
        {"a": {}, "b": {"deps": ["a"]}, "c": {"deps": ["b"]}, "other": {}},
        platforms=["amd64"],
    )
    p = plan_of(recipe, environ={})
    sub = p.subplan(p.select(["b"]))
    assert [n.step for n in sub.order] == ["a", "b"]
    assert sub.edges() == [(NodeId("a", "linux/amd64"), NodeId("b", "linux/amd64"))]
    with pytest.raises(RecipeError, match="unknown step 'zz'"):
        p.select(["zz"])


def test_same_recipe_and_facts_give_the_same_plan_json(tmp_path: Path) -> None:
    import json

    from crossplan.cli.render import graph_json
    from crossplan.planner import make_plan
    from crossplan.probe import gather

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    recipe = from_dict({"project": {"name": "t", "platforms": ["linux/amd64", "linux/arm64"]},
                        "steps": {"s": {"kind": "shell", "src": "src", "command": ["true"],
                                        "outputs": ["o"]}}}, file=tmp_path / "plan.toml")
    facts = gather(recipe, environ={"PATH": "/bin"})
    one = json.dumps(graph_json(make_plan(recipe, None, facts)), sort_keys=True)
    two = json.dumps(graph_json(make_plan(recipe, None, facts)), sort_keys=True)
    assert one == two
    node = json.loads(one)["nodes"][0]
    assert node["action"]["argv"] == [["true"]]
    assert node["action"]["input_root"]["files"][0]["path"] == "a.txt"
    assert node["action"]["env"]["TARGETARCH"] == "amd64"
    assert node["action"]["platform"] == {"OSFamily": "linux", "ISA": "x86-64"}
