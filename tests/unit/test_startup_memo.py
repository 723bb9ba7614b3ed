"""The memo of validated recipes (recipes/loader.py): pydantic validation is paid once per
change of any plan.toml (workspace members too); a hit equals the slow path; errors are
never memoised; a memo that does not load is a miss."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossplan.errors import RecipeError
from crossplan.recipes import loader
from crossplan.recipes.models import Recipe

ROOT = """\
[project]
name = "ws"
platforms = ["linux/amd64"]

[workspace]
members = ["svc/*"]
"""


def member(name: str, command: str = "true") -> str:
    return f"""\
[project]
name = "{name}"

[steps.build]
kind = "shell"
src = "."
command = ["sh", "-c", "{command}"]
outputs = ["out"]
"""


@pytest.fixture
def memo_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CROSSPLAN_CACHE_DIR", str(tmp_path / "store"))
    monkeypatch.delenv("CROSSPLAN_RECIPE_MEMO", raising=False)
    return tmp_path / "store" / "recipes"


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each pydantic validation of a plan.toml (the slow path), by file."""
    seen: list[str] = []
    real = loader._model

    def counting(data: dict[str, object], file: Path, text: str) -> Recipe:
        seen.append(file.name if file.name != "plan.toml" else file.parent.name)
        return real(data, file, text)

    monkeypatch.setattr(loader, "_model", counting)
    return seen


def _load(root: Path) -> Recipe:
    """load, then remember: what a run does once the recipe also planned."""
    recipe = loader.load(root)
    loader.remember(recipe)
    return recipe


def workspace(tmp_path: Path, *names: str) -> Path:
    root = tmp_path / "ws"
    root.mkdir(exist_ok=True)
    (root / "plan.toml").write_text(ROOT)
    for name in names:
        (root / "svc" / name).mkdir(parents=True, exist_ok=True)
        (root / "svc" / name / "plan.toml").write_text(member(name))
    return root


def test_second_load_is_a_hit_equal_to_the_slow_path(
    tmp_path: Path, memo_dir: Path, validations: list[str]
) -> None:
    root = workspace(tmp_path, "a", "b")
    first = _load(root)
    assert sorted(validations) == ["a", "b", "ws"]
    assert len(list(memo_dir.glob("*.pickle"))) == 1
    validations.clear()
    second = _load(root)
    assert validations == []
    assert second == first and sorted(second.steps) == ["svc/a:build", "svc/b:build"]
    assert second.label == first.label and second.root == first.root


@pytest.mark.parametrize("change", ["root", "member", "new member", "removed member"])
def test_any_plan_file_change_is_a_miss(
    tmp_path: Path, memo_dir: Path, validations: list[str], change: str
) -> None:
    root = workspace(tmp_path, "a", "b")
    _load(root)
    validations.clear()
    if change == "root":
        (root / "plan.toml").write_text(ROOT.replace('"ws"', '"ws2"'))
    elif change == "member":
        (root / "svc" / "a" / "plan.toml").write_text(member("a", "echo changed"))
    elif change == "new member":
        workspace(tmp_path, "c")
    else:
        (root / "svc" / "b" / "plan.toml").unlink()
    got = _load(root)
    assert validations != []
    loader_off = _slow(root)
    assert got == loader_off
    validations.clear()
    assert _load(root) == got and validations == []  # the new state is memoised


def _slow(root: Path) -> Recipe:
    return loader.load_text((root / "plan.toml").read_text(), file=(root / "plan.toml").resolve())


def test_errors_are_never_memoised(tmp_path: Path, memo_dir: Path) -> None:
    root = workspace(tmp_path, "a")
    (root / "svc" / "a" / "plan.toml").write_text(member("a") + "bogus = 1\n")
    for _ in range(2):
        with pytest.raises(RecipeError, match="unknown field 'bogus'"):
            _load(root)
    assert list(memo_dir.glob("*.pickle")) == []
    (root / "svc" / "a" / "plan.toml").write_text(member("a"))
    assert sorted(_load(root).steps) == ["svc/a:build"]
    # and a member broken after a good load is reported, not hidden by the memo
    (root / "svc" / "a" / "plan.toml").write_text(member("a") + "bogus = 1\n")
    with pytest.raises(RecipeError, match="unknown field 'bogus'"):
        _load(root)


def test_a_corrupt_memo_is_a_miss(tmp_path: Path, memo_dir: Path, validations: list[str]) -> None:
    root = workspace(tmp_path, "a")
    first = _load(root)
    (memo,) = memo_dir.glob("*.pickle")
    memo.write_bytes(memo.read_bytes()[:40])
    validations.clear()
    assert _load(root) == first and validations != []


def test_the_memo_can_be_turned_off(
    tmp_path: Path, memo_dir: Path, monkeypatch: pytest.MonkeyPatch, validations: list[str]
) -> None:
    monkeypatch.setenv("CROSSPLAN_RECIPE_MEMO", "off")
    root = workspace(tmp_path, "a")
    _load(root)
    _load(root)
    assert validations.count("ws") == 2 and not memo_dir.exists()


def test_a_recipe_that_never_planned_leaves_no_memo(tmp_path: Path, memo_dir: Path) -> None:
    root = workspace(tmp_path, "a")
    loader.load(root)  # e.g. planning then fails on a cycle: nothing may be written
    assert not memo_dir.exists()
