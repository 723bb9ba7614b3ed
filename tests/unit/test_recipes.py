"""Loading plan.toml: the models, and each validation error's file, step, line and hint."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from crossplan.errors import EXIT_USAGE, RecipeError
from crossplan.recipes import ShellStep, from_dict, load, load_text
from crossplan.recipes.validate import check_relative

GOOD = """
[project]
name = "demo"
platforms = ["linux/amd64", "arm64"]

[steps.gen]
description = "make a file"
kind = "shell"
src = "gen/"
command = ["sh", "-c", "cat a.txt > out.txt"]
outputs = ["out.txt"]
env = { FOO = "1" }
platform_independent = true

[steps.use]
kind = "shell"
src = "."
deps = ["gen"]
command = ["true"]
"""


def _load(text: str, tmp_path: Path) -> object:
    return load_text(textwrap.dedent(text).lstrip(), file=tmp_path / "plan.toml")


def _error(text: str, tmp_path: Path) -> RecipeError:
    with pytest.raises(RecipeError) as info:
        _load(text, tmp_path)
    assert info.value.exit_code == EXIT_USAGE
    assert info.value.file == str(tmp_path / "plan.toml")
    return info.value


def test_good_recipe_loads_into_frozen_models(tmp_path: Path) -> None:
    recipe = load_text(GOOD, file=tmp_path / "plan.toml")
    gen = recipe.steps["gen"]
    assert isinstance(gen, ShellStep)
    assert gen.command == ("sh", "-c", "cat a.txt > out.txt")
    assert gen.env == {"FOO": "1"}
    assert recipe.steps["use"].deps == ("gen",)
    assert recipe.root == tmp_path
    with pytest.raises(ValidationError):
        gen.src = "other/"  # type: ignore[misc]


def test_load_accepts_a_directory(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text(GOOD)
    assert set(load(tmp_path).steps) == {"gen", "use"}


def test_load_missing_file_is_a_recipe_error(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="no recipe at"):
        load(tmp_path / "nope.toml")


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    text = '[project]\nname = "x"\n\n[steps.a]\nkind = "shell"\nsrc = "src/\n'
    exc = _error(text, tmp_path)
    assert exc.line == 6
    assert "TOML syntax error" in exc.message
    assert str(exc).startswith(f"{tmp_path / 'plan.toml'}:6: ")


def test_unknown_field_names_step_field_and_line(tmp_path: Path) -> None:
    exc = _error(
        """
        [project]
        name = "x"
        [steps.a]
        kind = "shell"
        src = "."
        colour = "blue"
        command = ["true"]
        """,
        tmp_path,
    )
    assert exc.step == "a"
    assert exc.message == "unknown field 'colour'"
    assert exc.line == 6


def test_unknown_project_field(tmp_path: Path) -> None:
    exc = _error('[project]\nname = "x"\nplatfroms = ["linux/amd64"]\n', tmp_path)
    assert "unknown field 'project.platfroms'" in exc.message


def test_unknown_kind_lists_the_kinds(tmp_path: Path) -> None:
    exc = _error(
        '[project]\nname = "x"\n[steps.a]\nkind = "fortran"\nsrc = "."\ncommand = ["true"]\n',
        tmp_path,
    )
    assert exc.step == "a"
    assert exc.message == "unknown kind 'fortran'"
    assert exc.hint is not None and "shell" in exc.hint and "go" in exc.hint


def test_missing_src_for_shell(tmp_path: Path) -> None:
    exc = _error('[project]\nname = "x"\n[steps.a]\nkind = "shell"\ncommand = ["true"]\n', tmp_path)
    assert exc.step == "a"
    assert exc.message == "missing 'src'"


def test_missing_command_for_shell(tmp_path: Path) -> None:
    exc = _error('[project]\nname = "x"\n[steps.a]\nkind = "shell"\nsrc = "."\n', tmp_path)
    assert exc.step == "a"
    assert "missing required field 'command'" in exc.message


def _one_step(tmp_path: Path, **fields: object) -> RecipeError:
    step = {"kind": "shell", "src": ".", "command": ["true"], **fields}
    with pytest.raises(RecipeError) as info:
        from_dict({"project": {"name": "x"}, "steps": {"a": step}}, file=tmp_path / "plan.toml")
    assert info.value.step == "a"
    return info.value


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"src": "/etc"}, "src path '/etc' is absolute"),
        ({"src": "~/code"}, "src path '~/code' is absolute"),
        ({"src": "../elsewhere"}, "src path '../elsewhere' escapes the project (..)"),
        ({"outputs": ["/tmp/out"]}, "output path '/tmp/out' is absolute"),
        ({"outputs": ["out/../../x"]}, "output path 'out/../../x' escapes the project (..)"),
        ({"deps": ["missing"]}, "unknown dep 'missing'"),
        ({"platforms": ["linux/arm65"]}, "unknown or unsupported platform 'linux/arm65'"),
    ],
)
def test_step_field_errors(tmp_path: Path, fields: dict[str, object], message: str) -> None:
    assert _one_step(tmp_path, **fields).message == message


def test_unknown_dep_suggests_a_step(tmp_path: Path) -> None:
    with pytest.raises(RecipeError) as info:
        from_dict(
            {
                "project": {"name": "x"},
                "steps": {
                    "build": {"kind": "shell", "src": ".", "command": ["true"]},
                    "use": {"kind": "shell", "src": ".", "command": ["true"], "deps": ["biuld"]},
                },
            },
            file=tmp_path / "plan.toml",
        )
    assert info.value.step == "use"
    assert info.value.hint == "did you mean 'build'?"


def test_unknown_project_platform_suggests_closest(tmp_path: Path) -> None:
    with pytest.raises(RecipeError) as info:
        from_dict(
            {"project": {"name": "x", "platforms": ["linux/amd46"]}}, file=tmp_path / "plan.toml"
        )
    assert info.value.hint == "did you mean 'linux/amd64'?"
    assert info.value.file == str(tmp_path / "plan.toml")


def test_two_steps_writing_the_same_output(tmp_path: Path) -> None:
    step = {"kind": "shell", "src": "src/", "command": ["true"], "outputs": ["o.txt"]}
    with pytest.raises(RecipeError) as info:
        from_dict(
            {
                "project": {"name": "x"},
                "steps": {"a": step, "b": {**step, "outputs": ["./o.txt"]}},
            },
            file=tmp_path / "plan.toml",
        )
    assert info.value.step == "b"
    assert info.value.message == "output './o.txt' is also written by step 'a'"


def test_same_output_name_under_different_src_is_allowed(tmp_path: Path) -> None:
    step = {"kind": "shell", "command": ["true"], "outputs": ["o.txt"]}
    recipe = from_dict(
        {
            "project": {"name": "x"},
            "steps": {"a": {**step, "src": "a/"}, "b": {**step, "src": "b/"}},
        },
        file=tmp_path / "plan.toml",
    )
    assert set(recipe.steps) == {"a", "b"}


@pytest.mark.parametrize("path", ["a/b", "./a", "a/..b", "."])
def test_check_relative_accepts_paths_inside(path: str) -> None:
    check_relative(path, "src", "plan.toml", "s")


def test_error_render_ends_with_hint(tmp_path: Path) -> None:
    exc = _one_step(tmp_path, src="/abs")
    text = str(exc)
    assert text.startswith(f"{tmp_path / 'plan.toml'}: step 'a': src path '/abs' is absolute")
    assert text.splitlines()[-1].startswith("  hint: ")
