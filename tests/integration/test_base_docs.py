"""A registry base's manifests and configs are kept in the store by digest: a plan asks the
registry only what the tag names now (one GET), a base pinned by plan.lock only whether the
locked index is still there (one HEAD); a kept document that no longer hashes to its name is
fetched again. Counted in the real registry's access log."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from test_lock_bases import _project
from test_noop_push import REGISTRY, _registry_log, _requests
from testkit import Cli

pytestmark = pytest.mark.integration


def test_a_plan_asks_the_registry_only_what_the_tag_names(
    cli: Cli, tmp_path: Path, cache_dir: Path,
) -> None:
    log = _registry_log()
    repo = f"crossplan-test/docs-{uuid.uuid4().hex[:8]}"
    base = f"{REGISTRY}/{repo}:1"
    made = cli("run", _project(tmp_path / "base", "scratch", f'"{base}"'), "--push", "--json")
    assert made.code == 0, made.stderr
    proj = _project(tmp_path / "app", base)

    start = log.stat().st_size
    first = cli("run", proj, "--json")
    assert first.code == 0, first.stderr
    asked = [(m, p) for m, p in _requests(log, start, repo) if "/manifests/" in p
             or "/blobs/" in p]
    # the tag, the two platforms' manifests and configs (and the layers, to build)
    assert ("GET", f"/v2/{repo}/manifests/1") in asked
    assert sum(m == "GET" and "/manifests/sha256:" in p for m, p in asked) == 2, asked
    kept = sorted(p.name for p in (cache_dir / "docs").glob("*/*"))
    assert len(kept) == 5, kept  # the index, two manifests, two configs

    start = log.stat().st_size
    again = cli("run", proj, "--json", env={"CROSSPLAN_NOOP_MEMO": "off"})
    assert again.code == 0, again.stderr
    assert {s["status"] for s in again.json()["steps"]} == {"cached"}
    assert _requests(log, start, repo) == [("GET", f"/v2/{repo}/manifests/1")]

    # a kept manifest that no longer hashes to its name is asked for again, and kept anew
    manifest = next(p for p in (cache_dir / "docs").glob("*/*")
                    if b'"layers"' in p.read_bytes())
    manifest.write_bytes(b"{}")
    start = log.stat().st_size
    mended = cli("run", proj, "--json", env={"CROSSPLAN_NOOP_MEMO": "off"})
    assert mended.code == 0, mended.stderr
    assert _requests(log, start, repo) == [
        ("GET", f"/v2/{repo}/manifests/1"), ("GET", f"/v2/{repo}/manifests/sha256:{manifest.name}")]
    assert manifest.read_bytes() != b"{}"

    # pinned by plan.lock: only whether the locked index is still there (plan/lock.py)
    lock = cli("lock", proj, "--json")
    assert lock.code == 0, lock.stderr
    index = lock.json()["lock"]["bases"][base]["digest"]
    assert cli("run", proj, "--json").code == 0  # the lock enters the key: built once
    start = log.stat().st_size
    locked = cli("run", proj, "--json", env={"CROSSPLAN_NOOP_MEMO": "off"})
    assert locked.code == 0, locked.stderr
    assert {s["status"] for s in locked.json()["steps"]} == {"cached"}
    assert _requests(log, start, repo) == [("HEAD", f"/v2/{repo}/manifests/{index}")]


def test_a_tag_moved_after_planning_does_not_change_what_is_built(
    cli: Cli, tmp_path: Path, cache_dir: Path, cli_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The image is built from the base index its key names (resolved when planning), not
    from what the tag names by the time the image step runs: the same bytes as a build that
    saw the tag unmoved, other bytes than a build of the moved tag."""
    from crossplan import api
    from crossplan.backends.oci.registry import RegistryClient

    repo = f"crossplan-test/moved-{uuid.uuid4().hex[:8]}"
    base = f"{REGISTRY}/{repo}:1"
    old_proj = _project(tmp_path / "base", "scratch", f'"{base}"')
    assert cli("run", old_proj, "--push").code == 0
    with RegistryClient(REGISTRY) as reg:
        found = reg.get_manifest(repo, "1")
    assert found is not None
    old_index, media_type = found
    proj = _project(tmp_path / "app", base)
    for key, value in cli_env.items():
        monkeypatch.setenv(key, value)
    planned = api.plan(api.load(proj / "plan.toml"), cache_dir=cache_dir)

    # the tag moves to another base (other content) before the image is built
    new_proj = _project(tmp_path / "base2", "scratch", f'"{base}"')
    (new_proj / "plan.toml").write_text(
        (new_proj / "plan.toml").read_text().replace("$TARGETARCH", "moved $TARGETARCH"))
    assert cli("run", new_proj, "--push").code == 0
    built = api.run(planned, api.RunOptions(cache_dir=cache_dir))
    assert built.ok, built
    digest = built.images[0].index_digest

    moved = cli("run", proj, "--json", env={"CROSSPLAN_CACHE_DIR": str(tmp_path / "s2")})
    assert moved.code == 0, moved.stderr
    assert moved.json()["images"][0]["index_digest"] != digest  # the moved tag: other bytes
    with RegistryClient(REGISTRY) as reg:  # the tag back where it was when planned
        reg.put_manifest(repo, "1", old_index, media_type)
    unmoved = cli("run", proj, "--json", env={"CROSSPLAN_CACHE_DIR": str(tmp_path / "s3")})
    assert unmoved.code == 0, unmoved.stderr
    assert unmoved.json()["images"][0]["index_digest"] == digest
