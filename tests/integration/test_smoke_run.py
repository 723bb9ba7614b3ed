"""`plan run --smoke`: each platform's binary runs (arm64 under qemu-user) and is checked."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from testkit import EXAMPLES, Cli

pytestmark = pytest.mark.integration


def _go_project(tmp_path: Path, expect: str) -> Path:
    proj = tmp_path / "proj"
    shutil.copytree(EXAMPLES / "hello" / "go", proj / "go")
    (proj / "plan.toml").write_text(
        '[project]\nname = "smoke"\nplatforms = ["linux/amd64", "linux/arm64"]\n\n'
        '[steps.hello]\nkind = "go"\nsrc = "go/"\npackage = "./cmd/hello"\n'
        f'smoke = []\nsmoke_expect = "{expect}"\n'
    )
    return proj


def test_smoke_runs_every_platform_binary(cli: Cli, tmp_path: Path) -> None:
    res = cli("run", _go_project(tmp_path, "hello from go"), "--smoke", "--json", timeout=600)
    assert res.code == 0, res.stderr
    steps = res.steps()
    assert steps["hello@linux/amd64"]["smoke"] == "ok: hello from go on amd64"
    assert steps["hello@linux/arm64"]["smoke"] == "ok: hello from go on arm64"


def test_smoke_mismatch_fails_the_run(cli: Cli, tmp_path: Path) -> None:
    res = cli("run", _go_project(tmp_path, "hello from rust"), "--smoke", "--json", timeout=600)
    assert res.code == 1
    steps = res.steps()
    assert steps["hello@linux/arm64"]["status"] == "failed"
    assert "expected 'hello from rust'" in steps["hello@linux/arm64"]["smoke"]
    # Without --smoke the same recipe builds fine: the binaries themselves are cached.
    again = cli("run", _go_project(tmp_path / "b", "hello from rust"), "--json", timeout=600)
    assert again.code == 0, again.stderr
