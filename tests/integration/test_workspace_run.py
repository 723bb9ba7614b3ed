"""One run over every member of a workspace, and a target building just what it needs (image
steps label their images with the git revision: these runs spawn ``git``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from workspace_kit import MakeWs

import crossplan
from crossplan.recipes import load

pytestmark = pytest.mark.integration


def test_run_builds_every_member_in_one_run(make_ws: MakeWs, tmp_path: Path) -> None:
    root = make_ws()
    p = crossplan.plan(load(root), cache_dir=tmp_path / "cache", environ={})
    result = crossplan.run(p, crossplan.RunOptions(
        cache_dir=tmp_path / "cache", export=tmp_path / "out", environ={}))
    assert result.ok, [s.error for s in result.steps]
    doc = tmp_path / "out" / "libs/shared:doc" / "linux_amd64" / "doc.txt"
    assert doc.read_text() == "lib v1\ngenerated\n"
    cli = tmp_path / "out" / "tools/cli:bin" / "linux_arm64" / "cli.txt"
    assert cli.read_text() == "cli main\nlib v1\n"
    assert result.image("tools/cli:image").manifests.keys() == {"linux/arm64"}


def test_a_target_builds_just_what_it_needs(make_ws: MakeWs, tmp_path: Path) -> None:
    p = crossplan.plan(load(make_ws()), cache_dir=tmp_path / "cache", environ={})
    result = crossplan.run(p, crossplan.RunOptions(
        cache_dir=tmp_path / "cache", targets=["tools/cli:image"], environ={}))
    assert [str(s.node) for s in result.steps] == [
        "libs/shared:lib@linux/arm64", "tools/cli:bin@linux/arm64", "tools/cli:image",
    ]
