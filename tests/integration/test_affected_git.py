"""Affected targets against real git revisions (``git`` subprocesses) and through the `plan`
CLI: exactly the dependents of a change, on every platform; with what changed for each."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from affected_kit import API_NODES, FILES, LIB_NODES, WEB_NODES, write
from testkit import Cli

import crossplan
from crossplan.errors import RecipeError
from crossplan.planner import NodeId
from crossplan.recipes import load

pytestmark = pytest.mark.integration


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com",
         "-c", "commit.gpgsign=false", *args],
        capture_output=True, text=True, check=True,
    )
    return done.stdout


@pytest.fixture
def mono(tmp_path: Path) -> Path:
    root = tmp_path / "repo" / "mono"  # a plan below the repository's top level
    for rel, text in FILES.items():
        write(root, rel, text)
    git(root.parent, "init", "-q")
    git(root.parent, "add", "-A")
    git(root.parent, "commit", "-q", "-m", "init")
    return root


def affected_since(root: Path, rev: str, cache: Path) -> crossplan.Affected:
    p = crossplan.plan(load(root), cache_dir=cache, environ={})
    return crossplan.affected(p, since=rev, cache_dir=cache, environ={})


def names(found: crossplan.Affected) -> set[str]:
    return {str(n) for n in found.targets}


def test_a_library_change_affects_exactly_its_dependents(mono: Path, tmp_path: Path) -> None:
    write(mono, "libs/core/src/core.txt", "core v2\n")
    found = affected_since(mono, "HEAD", tmp_path / "cache")
    assert names(found) == LIB_NODES | API_NODES
    assert found.steps == ["libs/core:lib", "services/api:bin", "services/api:image"]
    lib = found.get("libs/core:lib@linux/arm64")
    assert lib is not None and lib.changes == ("input changed: libs/core/src/core.txt",)
    api = found.get(NodeId("services/api:bin", "linux/amd64"))
    assert api is not None and api.changes == ("dep libs/core:lib@linux/amd64 is affected",)
    assert found.total == 8 and found.removed == ()
    assert found.since == "HEAD" and found.commit == git(mono, "rev-parse", "HEAD").strip()


def test_a_service_change_affects_only_that_service(mono: Path, tmp_path: Path) -> None:
    write(mono, "services/web/src/web.txt", "web v2\n")
    assert names(affected_since(mono, "HEAD", tmp_path / "cache")) == WEB_NODES


def test_a_readme_edit_affects_nothing_even_once_committed(mono: Path, tmp_path: Path) -> None:
    write(mono, "README.md", "# mono, documented\n")
    assert affected_since(mono, "HEAD", tmp_path / "cache").nodes == ()
    git(mono, "commit", "-q", "-am", "docs")  # a new revision: image labels would differ
    assert affected_since(mono, "HEAD~1", tmp_path / "cache").nodes == ()


def test_a_recipe_change_names_the_field(mono: Path, tmp_path: Path) -> None:
    text = FILES["services/web/plan.toml"].replace("cat web.txt", "cat -n web.txt")
    write(mono, "services/web/plan.toml", text)
    found = affected_since(mono, "HEAD", tmp_path / "cache")
    assert names(found) == WEB_NODES
    change = found.get("services/web:bin@linux/amd64")
    assert change is not None and change.changes[0].startswith("step.command changed:")


def test_new_and_removed_nodes(mono: Path, tmp_path: Path) -> None:
    text = FILES["services/web/plan.toml"].replace("[steps.image]", "[steps.img]")
    write(mono, "services/web/plan.toml", text)
    found = affected_since(mono, "HEAD", tmp_path / "cache")
    new = found.get("services/web:img")
    assert new is not None and new.new and new.changes == ("new: not in the baseline",)
    assert found.removed == ("services/web:image",)


def test_a_revision_without_the_plan_makes_everything_new(mono: Path, tmp_path: Path) -> None:
    repo = mono.parent
    write(repo, "other.txt", "x\n")
    git(repo, "add", "other.txt")
    git(repo, "commit", "-q", "-m", "second")
    git(repo, "rm", "-rq", "mono")
    git(repo, "commit", "-q", "-m", "drop mono")
    for rel, text in FILES.items():
        write(mono, rel, text)
    found = affected_since(mono, "HEAD", tmp_path / "cache")
    assert len(found.nodes) == 8 and all(a.new for a in found.nodes)
    assert "no plan there" in found.baseline


def test_bad_revisions_and_no_repository(mono: Path, tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="unknown git revision"):
        affected_since(mono, "no-such-branch", tmp_path / "cache")
    plain = tmp_path / "plain"
    for rel, text in FILES.items():
        write(plain, rel, text)
    with pytest.raises(RecipeError, match="not inside a git repository"):
        affected_since(plain, "HEAD", tmp_path / "cache")


def test_since_the_last_recorded_run(mono: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    p = crossplan.plan(load(mono), cache_dir=cache, environ={})
    first = crossplan.affected(p, cache_dir=cache)
    assert len(first.nodes) == 8 and all(a.new for a in first.nodes)
    assert crossplan.run(p, crossplan.RunOptions(cache_dir=cache, environ={})).ok
    assert crossplan.affected(p, cache_dir=cache).nodes == ()
    write(mono, "libs/core/src/core.txt", "core v3\n")
    p = crossplan.plan(load(mono), cache_dir=cache, environ={})
    found = crossplan.affected(p, cache_dir=cache)
    assert names(found) == LIB_NODES | API_NODES
    assert found.get("libs/core:lib@linux/amd64").changes == (  # type: ignore[union-attr]
        "input changed: libs/core/src/core.txt",)


def test_run_affected_builds_only_those(mono: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    p = crossplan.plan(load(mono), cache_dir=cache, environ={})
    assert crossplan.run(p, crossplan.RunOptions(cache_dir=cache, environ={})).ok
    write(mono, "services/web/src/web.txt", "web v3\n")
    p = crossplan.plan(load(mono), cache_dir=cache, environ={})
    since_run = crossplan.RunOptions(cache_dir=cache, environ={}, affected=True)
    built = crossplan.run(p, since_run)
    assert {str(s.node): s.status for s in built.steps} == {n: "built" for n in WEB_NODES}
    # The last run recorded them: nothing is affected since; HEAD still differs.
    again = crossplan.run(p, since_run)
    assert again.steps == () and again.ok
    since_head = crossplan.RunOptions(cache_dir=cache, environ={}, affected=True, since="HEAD")
    cached = crossplan.run(p, since_head)
    assert {str(s.node): s.status for s in cached.steps} == {n: "cached" for n in WEB_NODES}


def test_cli_affected_and_run_affected(mono: Path, cli: Cli) -> None:
    write(mono, "libs/core/src/core.txt", "core v4\n")
    result = cli("affected", "-f", mono, "--since", "HEAD", "--json")
    assert result.code == 0, result.stderr
    doc = result.json()
    assert {a["node"] for a in doc["affected"]} == LIB_NODES | API_NODES
    assert doc["steps"] == ["libs/core:lib", "services/api:bin", "services/api:image"]
    text = cli("affected", "-f", mono, "--since", "HEAD")
    assert "input changed: libs/core/src/core.txt" in text.stdout
    assert "5 of 8 node(s) affected" in text.stdout
    run = cli("run", mono, "services/api:image", "--affected", "--since", "HEAD", "--json")
    assert run.code == 0, run.stderr
    assert set(run.statuses()) == LIB_NODES | API_NODES
    bad = cli("run", mono, "--since", "HEAD")
    assert bad.code == 2 and "--since needs --affected" in bad.stderr
    missing = cli("affected", "-f", mono, "--since", "nope")
    assert missing.code == 2 and "unknown git revision" in missing.stderr
