"""examples/monorepo in a git repository: a change to the shared C library marks exactly the
services that link it (C and Go, every platform, their images), a service's own change marks
only it, a README edit marks nothing; computed from keys with the real toolchains."""

from __future__ import annotations

from pathlib import Path

import pytest
from monorepo_env import API_C, API_GO, LIB, WORKER, edit, git, missing, monorepo_repo
from testkit import Cli

import crossplan
from crossplan.errors import EnvironmentProblem

pytestmark = pytest.mark.integration


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return monorepo_repo(tmp_path / "monorepo")


def affected(repo: Path, cache: Path, since: str = "HEAD") -> crossplan.Affected:
    try:
        p = crossplan.plan(crossplan.load(repo), cache_dir=cache)
    except EnvironmentProblem as exc:
        missing(str(exc))
        raise
    assert len(p.nodes) == 11
    return crossplan.affected(p, since=since, cache_dir=cache)


def nodes(found: crossplan.Affected) -> set[str]:
    return {str(n) for n in found.targets}


@pytest.mark.parametrize("path", ["libs/greet/src/greet.c", "libs/greet/src/greet.h"])
def test_a_library_change_marks_exactly_the_services_linking_it(
    repo: Path, tmp_path: Path, path: str
) -> None:
    with (repo / path).open("a") as f:
        f.write("/* changed */\n")
    found = affected(repo, tmp_path / "cache")
    assert nodes(found) == LIB | API_C | API_GO
    assert not nodes(found) & WORKER
    for platform in ("linux/amd64", "linux/arm64"):
        lib = found.get(f"libs/greet:lib@{platform}")
        assert lib is not None and lib.changes == (f"input changed: {path}",)
        for svc in ("api-c", "api-go"):
            bin_ = found.get(f"services/{svc}:bin@{platform}")
            assert bin_ is not None
            assert bin_.changes == (f"dep libs/greet:lib@{platform} is affected",)


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("services/api-c/src/main.c", API_C),
        ("services/api-go/src/main.go", API_GO),
        ("services/worker-rust/src/src/main.rs", WORKER),
    ],
)
def test_a_service_change_marks_only_that_service(
    repo: Path, tmp_path: Path, path: str, want: set[str]
) -> None:
    with (repo / path).open("a") as f:
        f.write("// changed\n")
    found = affected(repo, tmp_path / "cache")
    assert nodes(found) == want
    change = found.get(sorted(want)[0])
    assert change is not None and change.changes == (f"input changed: {path}",)


def test_a_recipe_change_in_one_member_marks_only_it(repo: Path, tmp_path: Path) -> None:
    edit(repo / "services/api-go/plan.toml", 'ldflags = "-s -w"', 'ldflags = "-s"')
    found = affected(repo, tmp_path / "cache")
    assert nodes(found) == API_GO
    change = found.get("services/api-go:bin@linux/arm64")
    assert change is not None and change.changes[0].startswith("step.ldflags changed:")


def test_a_readme_edit_marks_nothing(repo: Path, tmp_path: Path) -> None:
    with (repo / "README.md").open("a") as f:
        f.write("\nMore words.\n")
    assert affected(repo, tmp_path / "cache").nodes == ()
    git(repo, "commit", "-q", "-am", "docs")  # a new commit: the image labels' revision moves
    assert affected(repo, tmp_path / "cache", since="HEAD~1").nodes == ()


def test_cli_plan_affected_json(repo: Path, cli: Cli) -> None:
    edit(repo / "libs/greet/src/greet.c", '"1.0"', '"1.1"')
    result = cli("affected", "-f", repo, "--since", "HEAD", "--json", timeout=300)
    if result.code == 3:
        missing(result.stderr)
    assert result.code == 0, result.stderr
    doc = result.json()
    assert {a["node"] for a in doc["affected"]} == LIB | API_C | API_GO
    assert doc["steps"] == [
        "libs/greet:lib", "services/api-c:bin", "services/api-c:image",
        "services/api-go:bin", "services/api-go:image",
    ]
    assert doc["total"] == 11
