"""`plan ci` through the CLI process: in this repository the golden pipeline (plan path
relative to the root, crossplan installed from the checkout); in a git repository whose
plan lives in a subdirectory, --write puts the files at the root and an explicit --install
is required; without git, next to the plan with a warning; usage errors exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from ci_pipeline import make_git_repo
from release_env import shell_copy
from testkit import Cli

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "unit" / "golden" / "ci"
FILES = {"github": "github.yml", "gitlab": "gitlab-ci.yml", "jenkins": "Jenkinsfile"}
WRITTEN = {"github": ".github/workflows/crossplan.yml", "gitlab": ".gitlab-ci.yml",
           "jenkins": "Jenkinsfile"}
INSTALL = "crossplan @ git+https://example.invalid/crossplan"


def test_in_this_repository(cli: Cli, tmp_path: Path) -> None:
    for system, name in FILES.items():
        res = cli("ci", system, "-f", REPO / "examples/shell", cwd=tmp_path)
        assert res.code == 0, res.stderr
        assert res.stdout == (GOLDEN / "shell" / name).read_text()
        assert "warning" not in res.stderr


def test_plan_in_a_subdirectory_writes_at_the_root(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    plan_dir = shell_copy(root / "services" / "shell", "127.0.0.1:5000/demo/shell:1.0")
    make_git_repo(root)
    res = cli("ci", "github", "-f", plan_dir, "--write")
    assert res.code == 2 and "--install" in res.stderr
    assert not (root / ".github").exists()
    for system, rel in WRITTEN.items():
        res = cli("ci", system, "-f", plan_dir, "--write", "--json", "--install", INSTALL,
                  "--runners", "native" if system == "jenkins" else "single")
        assert res.code == 0, res.stderr
        doc = res.json()
        assert doc["written"] == str(root.resolve() / rel)
        assert (doc["root"], doc["plan"], doc["git"]) == (
            str(root.resolve()), "services/shell/plan.toml", True)
        text = (root / rel).read_text()
        assert "plan run services/shell/plan.toml" in text and f"'{INSTALL}'" in text
    assert not (plan_dir / ".github").exists() and not (plan_dir / ".gitlab-ci.yml").exists()
    # from inside the subdirectory, with the default plan.toml: the same pipeline
    inside = cli("ci", "gitlab", "--install", INSTALL, cwd=plan_dir)
    assert inside.code == 0 and inside.stdout == (root / ".gitlab-ci.yml").read_text()


def test_without_git_next_to_the_plan(cli: Cli, tmp_path: Path) -> None:
    project = shell_copy(tmp_path / "proj", "127.0.0.1:5000/demo/shell:1.0")
    res = cli("ci", "gitlab", "-f", project, "--write", "--install", "crossplan==0.1.0")
    assert res.code == 0, res.stderr
    assert "not in a git repository" in res.stderr
    assert (project / ".gitlab-ci.yml").exists()
    assert "plan run --cache-remote" in (project / ".gitlab-ci.yml").read_text()


def test_usage_errors(cli: Cli, tmp_path: Path) -> None:
    shell = REPO / "examples/shell"
    bad = cli("ci", "travis", "-f", shell, "--json")
    assert bad.code == 2 and bad.json()["exit_code"] == 2
    assert cli("ci", "github", "-f", tmp_path / "missing").code == 2
    res = cli("ci", "github", "-f", shell, "--runners", "qemu")
    assert res.code == 2 and "single or native" in res.stderr
    res = cli("publish-platform", shell, "--platform", "linux/amd64,linux/arm64")
    assert res.code == 2 and "exactly one --platform" in res.stderr
    res = cli("publish-index", tmp_path / "nothing-here", "--json")
    assert res.code == 2 and "no platform image records" in res.json()["error"]
