"""`plan ci` through the CLI process: the golden pipeline on stdout, --write next to the plan,
--json with the needs, options reaching the Jenkinsfile, usage errors exit 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from testkit import Cli

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "unit" / "golden" / "ci"
FILES = {"github": "github.yml", "gitlab": "gitlab-ci.yml", "jenkins": "Jenkinsfile"}


def test_cli(cli: Cli, tmp_path: Path) -> None:
    project = tmp_path / "shell"
    shutil.copytree(REPO / "examples/shell", project)
    res = cli("ci", "github", "-f", project)
    assert res.code == 0 and res.stdout == (GOLDEN / "shell" / FILES["github"]).read_text()
    res = cli("ci", "gitlab", "-f", project, "--write", "--json")
    assert res.code == 0, res.stderr
    assert res.json()["written"] == str(project / ".gitlab-ci.yml")
    assert (project / ".gitlab-ci.yml").read_text() == res.json()["text"]
    assert res.json()["needs"]["qemu"] == [] and res.json()["needs"]["tests"] == []
    res = cli("ci", "jenkins", "-f", project, "--cache-remote", "ghcr.io/a/c",
              "--default-branch", "trunk", "--install", "crossplan @ git+https://example.invalid/c")
    assert res.code == 0 and "when { branch 'trunk' }" in res.stdout
    assert "'crossplan @ git+https://example.invalid/c'" in res.stdout
    assert "credentials 'registry-ghcr-io'" in res.stdout
    bad = cli("ci", "travis", "-f", project, "--json")
    assert bad.code == 2 and bad.json()["exit_code"] == 2
    assert cli("ci", "github", "-f", tmp_path / "missing").code == 2
