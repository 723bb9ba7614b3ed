"""The first hour of a new user, pure parts: the three command forms (and unchanged dumps of
the old ones), the program-with-spaces diagnosis, virtual workspace roots, plan.toml found in
a parent directory, layout ref names, one missing toolchain deferred to its node, log paths
per project, the CLI's plan-argument helper. The CLI side: tests/integration/
test_first_hour_cli.py."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from crossplan.backends.toolchains.c import build_command
from crossplan.cli.common import plan_and_rest, plan_path
from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.executors.host import log_path
from crossplan.images.naming import layout_ref, output_for
from crossplan.planner.graph import NodeId
from crossplan.planner.keys import step_fields
from crossplan.platforms import Platform
from crossplan.probe.toolchains import probe_toolchains
from crossplan.recipes import CStep, ImageStep, ShellStep, find_recipe, load, load_text

SCRIPT = "mkdir -p out\necho one > out/a\nfalse\necho never > out/b\n"


@pytest.mark.parametrize(
    ("given", "argv"),
    [
        (["make", "hello"], ("make", "hello")),
        (["sh", "-c", "echo hi"], ("sh", "-c", "echo hi")),
        ("echo hi > out.txt", ("sh", "-ec", "echo hi > out.txt")),
        (SCRIPT, ("sh", "-ec", SCRIPT)),
        ([["make", "hello"]], ("make", "hello")),
        ([["mkdir", "-p", "a b"], ["touch", "a b/c"]],
         ("sh", "-ec", "mkdir -p 'a b'\ntouch 'a b/c'")),
    ],
)
def test_shell_command_forms_become_one_argv(given: object, argv: tuple[str, ...]) -> None:
    step = ShellStep.model_validate({"kind": "shell", "command": given})
    assert step.command == argv


def test_a_plain_argv_dumps_and_keys_as_before() -> None:
    old = ShellStep.model_validate({"kind": "shell", "command": ["make", "hello"]})
    same = ShellStep.model_validate({"kind": "shell", "command": [["make", "hello"]]})
    assert old.model_dump()["command"] == ("make", "hello")
    assert step_fields(old) == step_fields(same)
    c = CStep.model_validate({"kind": "c", "build": ["make hello"]})
    assert c.build == ("make hello",)  # a one-string list stays a shell line for C
    assert build_command(c.build) == ("sh", "-c", "make hello")


@pytest.mark.parametrize(
    ("build", "argv"),
    [
        ("make\nmake install", ("sh", "-ec", "make\nmake install")),
        ([["cmake", "-S", ".", "-B", "build"], ["cmake", "--build", "build"]],
         ("sh", "-ec", "cmake -S . -B build\ncmake --build build")),
        (["make", "hello"], ("make", "hello")),
    ],
)
def test_c_build_forms(build: object, argv: tuple[str, ...]) -> None:
    step = CStep.model_validate({"kind": "c", "build": build})
    assert build_command(step.build) == argv


def test_a_program_name_with_spaces_says_which_form_was_meant(tmp_path: Path) -> None:
    toml = textwrap.dedent("""
        [project]
        name = "p"
        [steps.gen]
        kind = "shell"
        src = "."
        command = ["cmake -S . -B build", "cmake --build build"]
    """)
    with pytest.raises(RecipeError) as info:
        load_text(toml, file=tmp_path / "plan.toml")
    text = info.value.render()
    assert "program not found: 'cmake -S . -B build'" in text
    assert "a list of strings is ONE command's argv" in text
    assert "list of lists or a multi-line string" in text
    assert "step 'gen'" in text and ":7:" in text  # file:line
    # the C build is checked when lowered (a compile stage reads the list as lines)
    c = CStep.model_validate({"kind": "c", "build": ["cmake -S . -B build", "make"]})
    with pytest.raises(EnvironmentProblem, match="ONE command's argv"):
        build_command(c.build)
    assert build_command(("/opt/my tools/build", "x")) == ("/opt/my tools/build", "x")


@pytest.mark.parametrize("bad", [[], [[]], ["make", ["x"]], [[1]], "  "])
def test_broken_command_forms_are_recipe_errors(tmp_path: Path, bad: object) -> None:
    from crossplan.recipes import from_dict

    data = {"project": {"name": "p"},
            "steps": {"gen": {"kind": "shell", "src": ".", "command": bad}}}
    with pytest.raises(RecipeError) as info:
        from_dict(data, file=tmp_path / "plan.toml")
    assert info.value.step == "gen"


def test_a_virtual_workspace_root(tmp_path: Path) -> None:
    root = tmp_path / "mono"
    (root / "svc").mkdir(parents=True)
    (root / "plan.toml").write_text('[workspace]\nmembers = ["svc"]\n')
    (root / "svc" / "plan.toml").write_text(
        '[project]\nname = "svc"\n[steps.gen]\nkind = "shell"\nsrc = "."\n'
        'command = "echo hi > o"\noutputs = ["o"]\n')
    recipe = load(root)
    assert recipe.project.name == "mono"
    assert recipe.project.platforms == ("linux/amd64", "linux/arm64")
    assert list(recipe.steps) == ["svc:gen"]
    # a plan.toml that is not a workspace still needs [project]
    (root / "svc" / "plan.toml").write_text('[steps.gen]\nkind = "shell"\ncommand = "x"\n')
    with pytest.raises(RecipeError, match="project"):
        load(root / "svc")


def test_the_nearest_plan_toml_in_a_parent_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "proj" / "src" / "deep").mkdir(parents=True)
    (tmp_path / "proj" / "plan.toml").write_text("")
    assert find_recipe(tmp_path / "proj" / "src" / "deep") == tmp_path / "proj" / "plan.toml"
    with pytest.raises(RecipeError, match=r"no plan\.toml in"):
        find_recipe(Path("/proc/self"))
    monkeypatch.chdir(tmp_path / "proj" / "src" / "deep")
    assert plan_path() == tmp_path / "proj" / "plan.toml"
    assert plan_path(Path("x.toml")) == Path("x.toml")
    assert plan_path(None, Path("y.toml")) == Path("y.toml")
    with pytest.raises(RecipeError, match="two plans"):
        plan_path(Path("x.toml"), Path("y.toml"))
    monkeypatch.chdir(tmp_path)
    assert plan_and_rest(["proj", "step"]) == (Path("proj"), ["step"])
    assert plan_and_rest(["step"], Path("proj")) == (Path("proj"), ["step"])


def test_layout_refs_are_the_first_tags_tag_else_the_step_name() -> None:
    tagged = ImageStep.model_validate({"kind": "image", "tags": ["r.io/a/b:1.0", "r.io/a/b:x"]})
    latest = ImageStep.model_validate({"kind": "image", "tags": ["localhost:5000/a/b"]})
    plain = ImageStep.model_validate({"kind": "image"})
    assert layout_ref("image", tagged) == "1.0"
    assert layout_ref("services/api:image", tagged) == "1.0"
    assert layout_ref("localhost", latest) == "latest"
    assert layout_ref("image", plain) == "image"
    assert layout_ref("services/api:image", plain) == "image"  # workspace: same rule
    # one directory per step; a workspace id never reads as oci:DIR:REF
    assert output_for("oci:dist", "services/api:image", 2) == "oci:dist/services/api/image"
    assert output_for("oci-archive:o/i.tar", "services/api:image", 2) == \
        "oci-archive:o/i-services-api-image.tar"
    assert output_for("oci:dist/hello", "image", 1) == "oci:dist/hello"


class _Missing:
    def __call__(self, sid: str, step: object) -> object:
        if sid == "app-rust":
            raise EnvironmentProblem("no Rust std for x86_64-unknown-linux-musl",
                                     hint="rustup target add x86_64-unknown-linux-musl")
        raise AssertionError(sid)


def test_a_missing_toolchain_is_deferred_to_its_node(tmp_path: Path) -> None:
    recipe = load_text(textwrap.dedent("""
        [project]
        name = "p"
        [steps.app-rust]
        kind = "rust"
        src = "."
        libc = "musl"
        [steps.gen]
        kind = "shell"
        src = "."
        command = "true"
    """), file=tmp_path / "plan.toml")
    amd, arm = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")
    nodes = {NodeId("app-rust", "linux/amd64"): amd, NodeId("app-rust", "linux/arm64"): arm,
             NodeId("gen", "linux/amd64"): amd}
    identities, commands, deferred, notes = probe_toolchains(
        recipe, nodes, {}, _Missing())  # type: ignore[arg-type]
    assert commands == {} and notes == ()
    assert set(deferred) == {NodeId("app-rust", "linux/amd64"), NodeId("app-rust", "linux/arm64")}
    err = deferred[NodeId("app-rust", "linux/arm64")]
    assert isinstance(err, EnvironmentProblem) and err.exit_code == 3
    assert err.file == str(tmp_path / "plan.toml") and err.step == "app-rust"
    assert str(tmp_path / "plan.toml") in err.render() and "rustup target add" in err.render()
    assert identities[NodeId("app-rust", "linux/amd64")] is None


class _Store:
    root = Path("/store")


def test_logs_are_kept_per_project() -> None:
    node = NodeId("image", "any")
    a = log_path(_Store(), node, "/work/a/plan.toml")  # type: ignore[arg-type]
    b = log_path(_Store(), node, "/work/b/plan.toml")  # type: ignore[arg-type]
    assert a != b and a.name == b.name == "image.log"
    assert a.parent.name.startswith("a-") and b.parent.name.startswith("b-")
    assert a == log_path(_Store(), node, "/work/a/plan.toml")  # type: ignore[arg-type]
    assert log_path(_Store(), NodeId("x", "linux/arm64")) == Path(  # type: ignore[arg-type]
        "/store/logs/x-linux_arm64.log")
