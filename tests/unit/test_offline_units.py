"""--offline's pieces: the push records, the switch, and pinning a registry base offline
(only by the digest it names; a tag needs the registry: exit 3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crossplan.errors import EXIT_ENVIRONMENT, EnvironmentProblem
from crossplan.images import offline
from crossplan.images.oci import oci_pin
from crossplan.images.pin import identity_fields
from crossplan.platforms import Platform
from crossplan.recipes import load
from crossplan.recipes.models import ImageStep

DIGEST = "sha256:" + "ab" * 32


def test_push_records_round_trip_and_are_left_alone_when_unchanged(tmp_path: Path) -> None:
    ref = "localhost:5000/demo/app:1.0"
    assert offline.last_pushed(tmp_path, ref) is None
    offline.record_push(tmp_path, ref, DIGEST)
    assert offline.last_pushed(tmp_path, ref) == DIGEST
    assert offline.last_pushed(tmp_path, ref + "x") is None
    path = offline.record_path(tmp_path, ref)
    os.utime(path, ns=(1, 1))
    offline.record_push(tmp_path, ref, DIGEST)  # the same: not rewritten
    assert path.stat().st_mtime_ns == 1
    offline.record_push(tmp_path, ref, "sha256:" + "cd" * 32)
    assert offline.last_pushed(tmp_path, ref) == "sha256:" + "cd" * 32
    path.write_text("not json")
    assert offline.last_pushed(tmp_path, ref) is None


def test_switch_from_environment_or_forced() -> None:
    assert offline.is_offline({"CROSSPLAN_OFFLINE": "1"})
    assert not offline.is_offline({"CROSSPLAN_OFFLINE": "0"})
    assert not offline.is_offline({})
    with offline.forced(True):
        assert offline.is_offline({})
    assert not offline.is_offline({})


def _image(tmp_path: Path, base: str) -> tuple[object, ImageStep]:
    (tmp_path / "plan.toml").write_text(
        '[project]\nname = "p"\n[steps.image]\nkind = "image"\n'
        f'base = "{base}"\n')
    recipe = load(tmp_path / "plan.toml")
    step = recipe.steps["image"]
    assert isinstance(step, ImageStep)
    return recipe, step


def test_offline_pin_uses_the_digest_a_base_names(tmp_path: Path) -> None:
    recipe, step = _image(tmp_path, f"localhost:5000/demo/base:1@{DIGEST}")
    with offline.forced(True):
        pin = oci_pin(recipe, "image", step, (Platform.parse("linux/amd64"),))  # type: ignore[arg-type]
    # what pull_base pins it to: name@digest of what the reference named
    assert identity_fields(pin)["base"] == f"localhost:5000/demo/base@{DIGEST}"


def test_offline_refuses_a_base_named_by_tag(tmp_path: Path) -> None:
    recipe, step = _image(tmp_path, "localhost:5000/demo/base:1")
    with offline.forced(True), pytest.raises(EnvironmentProblem) as exc:
        oci_pin(recipe, "image", step, (Platform.parse("linux/amd64"),))  # type: ignore[arg-type]
    assert exc.value.exit_code == EXIT_ENVIRONMENT
    assert exc.value.step == "image" and "not pinned by digest" in str(exc.value)
    assert "drop --offline" in str(exc.value)
