"""The no-op memo covers images on a registry base: a replay asks the registry one thing
per base (does the tag still name the index the image's key was made with; with plan.lock,
is the locked index still there; named by digest in the recipe, nothing), and a tag moved
since is a miss that plans and builds on the new base. Counted in the real registry's
access log; a replay is told from a run by stderr (no "planning" line)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from test_lock_bases import _project
from test_noop_memo import JSON, _replayed, settle
from test_noop_push import REGISTRY, _registry_log, _requests
from testkit import Cli, CliResult, require_component

from crossplan.probe.sandbox import sandbox_problem

pytestmark = pytest.mark.integration

CACHED = {"note@linux/amd64": "cached", "note@linux/arm64": "cached", "image": "cached"}


def _base(cli: Cli, tmp_path: Path, repo: str, text: str) -> str:
    """A two-platform base pushed as ``repo:1`` (from a store of its own); its index digest."""
    proj = _project(tmp_path / f"base-{text}", "scratch", f'"{REGISTRY}/{repo}:1"')
    toml = proj / "plan.toml"
    toml.write_text(toml.read_text().replace("echo $TARGETARCH", f"echo {text} $TARGETARCH"))
    made = cli("run", proj, "--push", "--json",
               env={"CROSSPLAN_CACHE_DIR": str(tmp_path / f"store-{text}")})
    assert made.code == 0, made.stderr
    return str(made.json()["images"][0]["index_digest"])


def test_a_replay_asks_each_base_once_and_a_moved_tag_builds_again(
    cli: Cli, tmp_path: Path, cache_dir: Path,
) -> None:
    require_component(sandbox_problem() is None, "bubblewrap cannot sandbox here")
    log = _registry_log()
    repo = f"crossplan-test/memo-base-{uuid.uuid4().hex[:8]}"
    _base(cli, tmp_path, repo, "one")
    proj = _project(tmp_path / "app", f"{REGISTRY}/{repo}:1")

    def run() -> CliResult:
        return cli("run", proj, *JSON)

    assert run().code == 0
    settle(run, CACHED, proj, cache_dir)
    start = log.stat().st_size
    assert _replayed(run())
    assert _requests(log, start, repo) == [("GET", f"/v2/{repo}/manifests/1")]

    moved = _base(cli, tmp_path, repo, "two")  # the tag names another index now
    start = log.stat().st_size
    rebuilt = run()
    assert not _replayed(rebuilt)
    assert rebuilt.statuses()["image"] == "built"
    assert ("GET", f"/v2/{repo}/manifests/1") in _requests(log, start, repo)

    # pinned by plan.lock: a replay asks whether the locked index is still there
    assert cli("lock", proj, "--json").code == 0
    assert run().code == 0
    settle(run, CACHED, proj, cache_dir)
    start = log.stat().st_size
    assert _replayed(run())
    assert _requests(log, start, repo) == [("GET", f"/v2/{repo}/manifests/{moved}")]

    # named by digest in the recipe: what it names cannot change, nothing is asked
    pinned = _project(tmp_path / "pinned", f"{REGISTRY}/{repo}@{moved}")

    def run_pinned() -> CliResult:
        return cli("run", pinned, *JSON)

    assert run_pinned().code == 0
    settle(run_pinned, CACHED, pinned, cache_dir)
    start = log.stat().st_size
    assert _replayed(run_pinned())
    assert _requests(log, start, repo) == []
