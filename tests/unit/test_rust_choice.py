"""Choosing a Rust toolchain by the crate's needs and the target's std: the first fitting
candidate wins and says why; none fitting is one error listing each candidate's lack."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossplan.backends.toolchains.rust_choice import (
    Candidate,
    CrateNeeds,
    choose_rust,
    crate_needs,
    parse_version,
)
from crossplan.errors import EnvironmentProblem

T = "aarch64-unknown-linux-gnu"
RUSTUP = Candidate("rustc 1.95.0 (rustup:stable)", (1, 95, 0), (1, 95, 0), has_std=False)
DEBIAN = Candidate("rustc 1.63.0 (system)", (1, 63, 0), (1, 63, 0), has_std=True)


@pytest.mark.parametrize(("needs", "chosen"), [
    (CrateNeeds(), 1),
    (CrateNeeds("2021", None, 3), 1),
    (CrateNeeds("2018", (1, 60, 0), None), 1),
])
def test_first_fitting_candidate(needs: CrateNeeds, chosen: int) -> None:
    index, why = choose_rust([RUSTUP, DEBIAN], needs, T)
    assert index == chosen
    assert why.startswith("chose rustc 1.63.0 (system)")
    assert f"skipped rustc 1.95.0 (rustup:stable): no std for {T}" in why


@pytest.mark.parametrize(("needs", "lack"), [
    (CrateNeeds("2021", None, 4), "Cargo.lock version 4 needs cargo >= 1.78.0"),
    (CrateNeeds("2024"), "edition 2024 needs rustc >= 1.85.0"),
    (CrateNeeds("2021", (1, 70, 0)), 'rust-version = "1.70.0" needs rustc >= 1.70.0'),
])
def test_impossible_lists_every_candidate(needs: CrateNeeds, lack: str) -> None:
    with pytest.raises(EnvironmentProblem) as exc:
        choose_rust([RUSTUP, DEBIAN], needs, T)
    text = exc.value.message
    assert f"rustc 1.95.0 (rustup:stable): no std for {T}" in text
    assert f"rustc 1.63.0 (system): {lack}" in text


def test_needs_read_from_the_crate(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text(
        '[package]\nname = "x"\nversion = "0.1.0"\nedition = "2021"\nrust-version = "1.65"\n')
    (tmp_path / "Cargo.lock").write_text("version = 4\n")
    assert crate_needs(tmp_path) == CrateNeeds("2021", (1, 65, 0), 4)
    assert crate_needs(tmp_path / "missing") == CrateNeeds()
    assert parse_version("cargo 1.63.0 (fd9c4297c 2022-07-01)") == (1, 63, 0)
