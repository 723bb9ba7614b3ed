"""plan.lock as tables: reading (and refusing) lock files, what `--update` reports, and
planning with a lock: a platform a step needs must be locked and still in the base
(errors name base, platform and step); resolvers are injected (no registry here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossplan.errors import RecipeError
from crossplan.probe.lock import apply_lock, lock
from crossplan.probe.lockfile import Locked, LockFile, diff, read_lock, write_lock
from crossplan.recipes import from_dict

A, B, C = ("sha256:" + c * 64 for c in "abc")
BOTH = {"linux/amd64": A, "linux/arm64": B}


def _recipe(tmp_path: Path, base: str = "oci:base:1"):  # type: ignore[no-untyped-def]
    return from_dict({
        "project": {"name": "p", "platforms": ["linux/amd64", "linux/arm64"]},
        "steps": {"image": {"kind": "image", "base": base}},
    }, file=tmp_path / "plan.toml")


def test_diff_reports_added_removed_changed() -> None:
    old = LockFile({"b": Locked(A, BOTH)})
    new = LockFile({"b": Locked(C, {"linux/amd64": A}), "n": Locked(B, {"linux/amd64": B})})
    got = {(c.image, c.platform, c.change) for c in diff(old, new)}
    assert got == {("b", None, "changed"), ("b", "linux/amd64", "unchanged"),
                   ("b", "linux/arm64", "removed"), ("n", None, "added"),
                   ("n", "linux/amd64", "added")}


def test_lock_file_round_trip_and_bad_files(tmp_path: Path) -> None:
    lf = LockFile({"r/x:1": Locked(A, BOTH)}, {"tool:1": Locked(B, {"linux/amd64": B})})
    write_lock(tmp_path / "plan.lock", lf)
    assert read_lock(tmp_path / "plan.lock") == lf
    assert read_lock(tmp_path / "none.lock") is None
    for text in ("{", '{"version": 99}', '{"version": 1, "bases": {"x": {}}}'):
        (tmp_path / "bad.lock").write_text(text)
        with pytest.raises(RecipeError, match="plan lock --update"):
            read_lock(tmp_path / "bad.lock")


def test_lock_writes_then_keeps_then_updates(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    answers = [Locked(A, BOTH), Locked(C, {"linux/amd64": A})]
    calls: list[str] = []

    def resolve(ref: str, root: Path) -> Locked:
        calls.append(ref)
        return answers[len(calls) - 1]

    first = lock(recipe, resolve=resolve)
    assert first.written and json.loads((tmp_path / "plan.lock").read_text())["bases"][
        "oci:base:1"]["digest"] == A
    again = lock(recipe, resolve=resolve)
    assert not again.written and calls == ["oci:base:1"]  # locked images are kept
    updated = lock(recipe, update=True, resolve=resolve)
    assert updated.written
    assert ("linux/arm64", "removed") in {(c.platform, c.change) for c in updated.changes}
    assert updated.warnings == ("base oci:base:1 has no linux/arm64 image (step 'image' "
                                "needs it; it has linux/amd64)",)


def test_planning_with_a_lock(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    assert apply_lock(recipe) is recipe  # no lock: nothing changes
    write_lock(tmp_path / "plan.lock", LockFile({"oci:base:1": Locked(A, BOTH)}))
    same = apply_lock(recipe, resolve=lambda ref, root: Locked(A, BOTH))
    assert same.steps["image"].base == "oci:base:1"  # type: ignore[union-attr]
    with pytest.raises(RecipeError, match="no longer has linux/arm64") as gone:
        apply_lock(recipe, resolve=lambda ref, root: Locked(C, {"linux/amd64": A}))
    assert "oci:base:1" in str(gone.value) and "plan lock --update" in str(gone.value)
    write_lock(tmp_path / "plan.lock", LockFile({"oci:base:1": Locked(A, {"linux/amd64": A})}))
    with pytest.raises(RecipeError, match=r"has no linux/arm64 image \(step 'image'"):
        apply_lock(recipe, resolve=lambda ref, root: Locked(A, {"linux/amd64": A}))
    assert apply_lock(recipe, "linux/amd64", resolve=lambda ref, root: Locked(A, {}))
    other = _recipe(tmp_path, "oci:other:1")
    with pytest.raises(RecipeError, match=r"not in plan\.lock") as missing:
        apply_lock(other)
    assert "plan lock" in str(missing.value) and "'image'" in str(missing.value)


def test_toolchain_images_are_pinned_to_their_locked_digest(tmp_path: Path) -> None:
    recipe = from_dict({
        "project": {"name": "p", "platforms": ["linux/amd64"]},
        "steps": {"app": {"kind": "go", "src": ".", "toolchain_image": "reg.example/go:1.27"}},
    }, file=tmp_path / "plan.toml")
    write_lock(tmp_path / "plan.lock", LockFile())
    with pytest.raises(RecipeError, match=r"reg\.example/go:1\.27 is not in plan\.lock"):
        apply_lock(recipe)
    write_lock(tmp_path / "plan.lock", LockFile({}, {"reg.example/go:1.27": Locked(A, {})}))
    pinned = apply_lock(recipe)
    assert pinned.steps["app"].toolchain_image == f"reg.example/go@{A}"
    assert recipe.steps["app"].toolchain_image == "reg.example/go:1.27"  # a new Recipe
