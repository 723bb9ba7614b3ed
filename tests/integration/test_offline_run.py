"""`plan run --offline` (and ``CROSSPLAN_OFFLINE=1``) makes no network request: asserted
through the access log of the real registry on 127.0.0.1:5000 (scripts/ci-env.sh),
filtered to this test's repositories. A no-op `--push --offline` of an image this store
pushed asks nothing (planned or replayed by the no-op memo); a remote cache is never
consulted; a push that would write, or a registry base not pinned by digest, is exit 3."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from test_noop_push import REGISTRY, _backdate, _registry_log, _requests
from testkit import EXAMPLES, Cli

pytestmark = pytest.mark.integration


def _project(tmp_path: Path, repo: str) -> Path:
    proj = tmp_path / "proj"
    shutil.copytree(EXAMPLES / "shell", proj)
    toml = proj / "plan.toml"
    toml.write_text(toml.read_text().replace(
        '"localhost:5000/crossplan/shell-demo:1.0"', f'"{REGISTRY}/{repo}:1.0"'))
    return proj


def test_offline_noop_push_makes_no_request(cli: Cli, tmp_path: Path, cache_dir: Path) -> None:
    log = _registry_log()
    repo = f"crossplan-test/offline-{uuid.uuid4().hex[:8]}"
    proj = _project(tmp_path, repo)
    start = log.stat().st_size
    assert cli("run", proj, "--push", "--json").code == 0
    assert any(m == "PUT" for m, _ in _requests(log, start, repo))  # the log does see us

    _backdate(proj, cache_dir)
    plain = ("run", proj, "--push", "--offline", "--json", "--progress", "plain")
    start = log.stat().st_size
    planned = cli(*plain)  # plans (and writes the memo)
    assert planned.code == 0, planned.stderr
    assert "planning" in planned.stderr
    doc = planned.json()
    assert {s["status"] for s in doc["steps"]} == {"cached"}
    assert doc["images"][0]["pushed"] == [f"{REGISTRY}/{repo}:1.0"]
    assert doc["images"][0]["up_to_date"] is True
    assert "--offline" in " ".join(doc["images"][0]["notes"])
    replay = cli(*plain)  # answered by the no-op memo: not even the one GET of a tag
    assert replay.code == 0 and "planning" not in replay.stderr, replay.stderr
    assert replay.json()["images"][0]["index_digest"] == doc["images"][0]["index_digest"]
    by_env = cli("run", proj, "--push", "--json", env={"CROSSPLAN_OFFLINE": "1"})
    assert by_env.code == 0, by_env.stderr
    assert _requests(log, start, repo) == []

    # A tag this store never pushed would need a write: exit 3, nothing asked.
    toml = proj / "plan.toml"
    toml.write_text(toml.read_text().replace(f"{repo}:1.0", f"{repo}:2.0"))
    start = log.stat().st_size
    refused = cli("run", proj, "--push", "--offline")
    assert refused.code == 3, refused.stderr
    assert "step 'image'" in refused.stderr and f"{repo}:2.0" in refused.stderr
    assert "drop --offline" in refused.stderr and "Traceback" not in refused.stderr
    assert _requests(log, start, repo) == []


def test_offline_never_consults_the_remote_cache(cli: Cli, tmp_path: Path) -> None:
    log = _registry_log()
    repo = f"crossplan-test/offline-cache-{uuid.uuid4().hex[:8]}"
    proj = _project(tmp_path, f"{repo}-image")
    remote = f"{REGISTRY}/{repo}"
    start = log.stat().st_size
    res = cli("run", proj, "--cache-remote", remote, "--offline", "--json",
              env={"CROSSPLAN_CACHE_DIR": str(tmp_path / "store1")})
    assert res.code == 0, res.stderr
    assert set(res.statuses().values()) == {"built"}
    assert _requests(log, start, repo) == []
    # The same run online does use it (the log would show the requests).
    start = log.stat().st_size
    online = cli("run", proj, "--cache-remote", remote, "--json",
                 env={"CROSSPLAN_CACHE_DIR": str(tmp_path / "store2")})
    assert online.code == 0, online.stderr
    assert _requests(log, start, repo) != []


def test_offline_refuses_an_unpinned_registry_base(cli: Cli, tmp_path: Path) -> None:
    log = _registry_log()
    repo = f"crossplan-test/offline-base-{uuid.uuid4().hex[:8]}"
    proj = _project(tmp_path, f"{repo}-image")
    toml = proj / "plan.toml"
    toml.write_text(toml.read_text().replace(
        'kind = "image"', f'kind = "image"\nbase = "{REGISTRY}/{repo}:1"'))
    start = log.stat().st_size
    res = cli("run", proj, "--offline")
    assert res.code == 3, res.stderr
    assert "step 'image'" in res.stderr and "not pinned by digest" in res.stderr
    assert "drop --offline" in res.stderr
    assert _requests(log, start, repo) == []


def test_offline_trusts_plan_lock_without_asking_the_registry(cli: Cli, tmp_path: Path) -> None:
    """A base pinned by plan.lock and already in the store: an offline run plans and builds
    without the one request a lock check makes online (is the locked index still there?)."""
    log = _registry_log()
    repo = f"crossplan-test/offline-lock-{uuid.uuid4().hex[:8]}"
    base = _project(tmp_path / "a", f"{repo}-base")
    assert cli("run", base, "--push").code == 0  # a base image in the registry
    proj = _project(tmp_path / "b", f"{repo}-image")
    toml = proj / "plan.toml"
    toml.write_text(toml.read_text().replace(
        'kind = "image"', f'kind = "image"\nbase = "{REGISTRY}/{repo}-base:1.0"'))
    assert cli("lock", proj).code == 0 and (proj / "plan.lock").is_file()
    online = cli("run", proj)
    assert online.code == 0, online.stderr  # the base's blobs are in the store now
    start = log.stat().st_size
    offline = cli("run", proj, "--offline", "--json", env={"CROSSPLAN_NOOP_MEMO": "off"})
    assert offline.code == 0, offline.stderr
    assert {s["status"] for s in offline.json()["steps"]} == {"cached"}
    assert _requests(log, start, f"{repo}-base") == []
    assert _requests(log, start, f"{repo}-image") == []
    assert _requests(log, 0, f"{repo}-base")  # the log does see this repository
