"""Workspaces: members merged into one Recipe as ``member:step``; deps, paths, platforms,
errors naming the member's plan.toml; the Workspace view. Runs over the members:
tests/integration/test_workspace_run.py."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from testkit import plan_of
from workspace_kit import CLI, LIB, ROOT, MakeWs

import crossplan
from crossplan.errors import RecipeError
from crossplan.planner import NodeId
from crossplan.recipes import ImageStep, load
from crossplan.recipes.workspace import dep_dir, resolve_ref


def test_members_merge_into_one_recipe(make_ws: MakeWs) -> None:
    recipe = load(make_ws())
    assert list(recipe.steps) == [
        "gen", "libs/shared:lib", "libs/shared:doc", "tools/cli:bin", "tools/cli:image",
    ]
    assert [m.path for m in recipe.members] == ["libs/shared", "tools/cli"]
    assert recipe.members[0].name == "shared"
    assert recipe.members[1].file == (recipe.root / "tools/cli/plan.toml").resolve()
    assert recipe.steps["libs/shared:lib"].src == "libs/shared/src/"
    assert recipe.steps["tools/cli:bin"].src == "tools/cli"
    assert recipe.steps["libs/shared:doc"].deps == ("libs/shared:lib", "gen")
    assert recipe.steps["tools/cli:bin"].deps == ("libs/shared:lib",)
    image = recipe.steps["tools/cli:image"]
    assert isinstance(image, ImageStep)
    assert image.copy_[0].from_ == "tools/cli:bin"


@pytest.mark.parametrize(
    ("member", "ref", "resolved"),
    [("svc/a", "lib", "svc/a:lib"), ("svc/a", "libs/x:lib", "libs/x:lib"),
     ("svc/a", ":gen", "gen")],
)
def test_resolve_ref(member: str, ref: str, resolved: str) -> None:
    assert resolve_ref(member, ref) == resolved


def test_dep_dirs_name_own_steps_by_name_and_others_by_id(make_ws: MakeWs) -> None:
    recipe = load(make_ws())
    assert dep_dir(recipe, "libs/shared:doc", "libs/shared:lib") == "lib"
    assert dep_dir(recipe, "libs/shared:doc", "gen") == "gen"
    assert dep_dir(recipe, "tools/cli:bin", "libs/shared:lib") == "libs/shared:lib"
    p = plan_of(recipe, environ={})
    doc = p.nodes[NodeId("libs/shared:doc", "linux/amd64")]
    assert doc.components["dep_dirs"] == {"gen": "gen", "libs/shared:lib": "lib"}
    assert "dep_dirs" not in p.nodes[NodeId("tools/cli:bin", "linux/arm64")].components


def test_member_platforms_filter_the_roots_targets(make_ws: MakeWs) -> None:
    p = plan_of(load(make_ws()), environ={})
    assert [n.platform for n in p.nodes if n.step == "tools/cli:bin"] == ["linux/arm64"]
    assert p.nodes[NodeId("tools/cli:image", "any")].platforms == (
        crossplan.Platform.parse("linux/arm64"),)
    assert {n.platform for n in p.nodes if n.step == "libs/shared:lib"} == {
        "linux/amd64", "linux/arm64"}


def test_select_takes_globs(make_ws: MakeWs) -> None:
    p = plan_of(load(make_ws()), environ={})
    assert {n.step for n in p.select(["libs/*:*"])} == {"libs/shared:lib", "libs/shared:doc"}
    with pytest.raises(RecipeError, match="unknown step 'nope/\\*:x'"):
        p.select(["nope/*:x"])


def test_unknown_target_names_the_members_file(make_ws: MakeWs) -> None:
    root = make_ws()
    p = plan_of(load(root), environ={})
    with pytest.raises(RecipeError) as info:
        p.select(["libs/shared:lbi"])
    assert info.value.file == str((root / "libs/shared/plan.toml").resolve())
    assert "unknown step 'lbi' in workspace member 'libs/shared'" in info.value.message
    assert info.value.hint == "its steps: lib, doc"


def test_plan_node_and_why(make_ws: MakeWs) -> None:
    p = plan_of(load(make_ws()), environ={})
    pn = p.node("libs/shared:doc", "linux/arm64")
    assert pn.id == NodeId("libs/shared:doc", "linux/arm64")
    why = p.why("libs/shared:doc@linux/arm64")
    assert why["deps"] == ["gen", "libs/shared:lib@linux/arm64"]
    assert why["kind"] == "shell"
    with pytest.raises(RecipeError, match="has 2 nodes"):
        p.node("libs/shared:doc")


@pytest.mark.parametrize(
    ("where", "text", "message"),
    [
        ("libs/shared/plan.toml", LIB.replace('deps = ["lib"', 'deps = ["lbi"'),
         "unknown dep 'libs/shared:lbi'"),
        ("tools/cli/plan.toml", CLI.replace("libs/shared:lib", "libs/nope:lib"),
         "unknown dep 'libs/nope:lib'"),
        ("libs/shared/plan.toml", LIB + '\n[toolchains]\ngo = "1.27.3"\n',
         "[toolchains] is only allowed in the workspace root"),
        ("libs/shared/plan.toml", LIB.replace("[steps.doc]", '[steps."a:b"]'),
         "invalid step name 'a:b' in a workspace member"),
        ("libs/shared/plan.toml", LIB.replace('src = "src/"', 'src = "../../gen"', 1),
         "src path '../../gen' escapes the project"),
        ("libs/shared/plan.toml", LIB.replace('kind = "shell"', 'kind = "sh"', 1),
         "unknown kind 'sh'"),
        ("tools/cli/plan.toml", CLI + "\n[workspace]\nmembers = []\n",
         "[workspace] is only allowed in the workspace root"),
    ],
)
def test_member_errors_name_the_members_file(
    make_ws: MakeWs, where: str, text: str, message: str
) -> None:
    root = make_ws(**{where: text})
    with pytest.raises(RecipeError) as info:
        load(root)
    assert info.value.exit_code == 2
    assert info.value.file == str((root / where).resolve())
    assert message in info.value.message


def test_cycle_across_members_is_reported(make_ws: MakeWs) -> None:
    lib = LIB.replace('[steps.lib]\nkind = "shell"', '[steps.lib]\nkind = "shell"\n'
                      'deps = ["tools/cli:bin"]')
    root = make_ws(**{"libs/shared/plan.toml": lib})
    with pytest.raises(RecipeError, match="dependency cycle"):
        plan_of(load(root), environ={})


def test_member_src_symlink_escaping_the_member_is_refused(make_ws: MakeWs) -> None:
    root = make_ws()
    (root / "libs/shared/src").rename(root / "elsewhere")
    (root / "libs/shared/src").symlink_to(root / "elsewhere")
    with pytest.raises(RecipeError, match="escapes the member") as info:
        plan_of(load(root), environ={})
    assert info.value.file == str((root / "libs/shared/plan.toml").resolve())


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ('["nope"]', "workspace member 'nope' has no plan.toml"),
        ('["apps/*"]', "matches no directory with a plan.toml"),
        ('["../x"]', "invalid workspace member '../x'"),
        ('["a:b"]', "invalid workspace member 'a:b'"),
    ],
)
def test_bad_members(make_ws: MakeWs, members: str, message: str) -> None:
    root = make_ws(**{"plan.toml": ROOT.replace('["libs/*", "tools/cli"]', members)})
    with pytest.raises(RecipeError, match=message.replace("*", "\\*")):
        load(root)


def test_root_step_ids_cannot_contain_a_colon(make_ws: MakeWs) -> None:
    root = make_ws(**{"plan.toml": ROOT.replace("[steps.gen]", '[steps."x:gen"]')})
    with pytest.raises(RecipeError, match="invalid step id 'x:gen' in a workspace root"):
        load(root)


def test_ids_may_hold_colons_and_slashes_but_not_at(tmp_path: Path) -> None:
    step = {"kind": "shell", "src": ".", "command": ["true"]}
    ok = crossplan.recipe_from_dict(
        {"project": {"name": "x"}, "steps": {"a/b:c": step}}, root=tmp_path)
    assert list(ok.steps) == ["a/b:c"]
    with pytest.raises(RecipeError, match="invalid step id 'a@b'"):
        crossplan.recipe_from_dict({"project": {"name": "x"}, "steps": {"a@b": step}},
                                   root=tmp_path)


def test_a_member_loaded_alone_explains_member_deps(make_ws: MakeWs) -> None:
    root = make_ws()
    with pytest.raises(RecipeError) as info:
        load(root / "tools/cli")
    assert "unknown dep 'libs/shared:lib'" in info.value.message
    assert info.value.hint is not None and "workspace root" in info.value.hint


def test_workspace_view(make_ws: MakeWs) -> None:
    ws = crossplan.Workspace.load(make_ws())
    assert ws.name == "ws"
    assert [m.path for m in ws.members] == ["libs/shared", "tools/cli"]
    assert ws.root_steps == ("gen",)
    assert list(ws.steps("tools/cli")) == ["tools/cli:bin", "tools/cli:image"]
    assert ws.member_of("libs/shared:doc") == ws.member("libs/shared")
    assert ws.member_of("gen") is None
    assert ws.member("tools/cli").platforms == ("linux/arm64", "linux/riscv64")
    with pytest.raises(RecipeError, match="no workspace member 'tools'"):
        ws.member("tools")
    plain = crossplan.Workspace.of(crossplan.recipe_from_dict(
        {"project": {"name": "x"}, "steps": {}}, root="."))
    assert plain.members == () and plain.root_steps == ()


def test_recipe_from_dict_reads_members_from_its_root(make_ws: MakeWs) -> None:
    root = make_ws()
    gen = {"kind": "shell", "src": "gen/", "command": ["true"], "platform_independent": True}
    recipe = crossplan.recipe_from_dict({
        "project": {"name": "py"}, "workspace": {"members": ["libs/shared"]},
        "steps": {"gen": gen},
    }, root=root)
    assert list(recipe.steps) == ["gen", "libs/shared:lib", "libs/shared:doc"]
    with pytest.raises(RecipeError, match="unknown dep 'gen'") as info:
        crossplan.recipe_from_dict(
            {"project": {"name": "py"}, "workspace": {"members": ["libs/shared"]}}, root=root)
    assert info.value.file == str((root / "libs/shared/plan.toml").resolve())


def test_member_keys_match_the_standalone_members(make_ws: MakeWs, tmp_path: Path) -> None:
    """A member step's key doesn't depend on where its plan.toml sits (src is hashed by
    content, ids aren't in keys)."""
    ws = plan_of(load(make_ws()), environ={})
    alone = tmp_path / "alone"
    (alone / "src").mkdir(parents=True)
    (alone / "src/lib.txt").write_text("lib v1\n")
    (alone / "plan.toml").write_text(textwrap.dedent(LIB).split("[steps.doc]")[0].replace(
        '[project]\nname = "shared"',
        '[project]\nname = "shared"\nplatforms = ["linux/amd64", "linux/arm64"]'))
    solo = plan_of(load(alone), environ={})
    assert (ws.nodes[NodeId("libs/shared:lib", "linux/amd64")].components
            == solo.nodes[NodeId("lib", "linux/amd64")].components)
