"""A no-op `plan run --push` of an image already pushed writes nothing to the registry:
asserted through the access log of the real registry on 127.0.0.1:5000 (scripts/ci-env.sh),
filtered to this test's own repository (other tests share the registry). Replayed by the
no-op memo it still looks at the tag once, and a tag moved meanwhile is pushed again."""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from pathlib import Path

import httpx
import pytest
from testkit import EXAMPLES, Cli, require_component

pytestmark = pytest.mark.integration

REGISTRY = "localhost:5000"  # started by scripts/ci-env.sh
_REQUEST = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (/v2/\S+) HTTP/[\d.]+"')


def _registry_log() -> Path:
    state = Path(os.environ.get("CROSSPLAN_CI_STATE", "/tmp/crossplan-ci"))
    pointer = state / "registry-log"
    log = Path(pointer.read_text().strip()) if pointer.is_file() else state / "registry.log"
    try:
        up = httpx.get(f"http://{REGISTRY}/v2/", timeout=5).status_code == 200
    except httpx.TransportError:
        up = False
    require_component(up and log.is_file(), "the registry of scripts/ci-env.sh start")
    return log


def _requests(log: Path, offset: int, repo: str) -> list[tuple[str, str]]:
    """The access-log requests for ``repo`` written after ``offset`` bytes."""
    with log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
    return [(m[1], m[2]) for m in _REQUEST.finditer(text) if f"/v2/{repo}/" in m[2]]


def _backdate(*roots: Path) -> None:
    old = time.time() - 60
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*dirnames, *filenames]:
                os.utime(os.path.join(dirpath, name), (old, old), follow_symlinks=False)
        os.utime(root, (old, old))


def test_noop_push_makes_no_registry_write(cli: Cli, tmp_path: Path, cache_dir: Path) -> None:
    log = _registry_log()
    repo = f"crossplan-test/noop-push-{uuid.uuid4().hex[:8]}"
    proj = tmp_path / "proj"
    shutil.copytree(EXAMPLES / "shell", proj)
    toml = proj / "plan.toml"
    toml.write_text(toml.read_text().replace(
        '"localhost:5000/crossplan/shell-demo:1.0"', f'"{REGISTRY}/{repo}:1.0"'))

    start = log.stat().st_size
    first = cli("run", proj, "--push", "--json")
    assert first.code == 0, first.stderr
    assert first.json()["images"][0]["pushed"] == [f"{REGISTRY}/{repo}:1.0"]
    pushed = _requests(log, start, repo)
    assert any(method == "PUT" for method, _ in pushed), pushed  # the log does show writes

    start = log.stat().st_size
    again = cli("run", proj, "--push", "--json")
    assert again.code == 0, again.stderr
    doc = again.json()
    assert {s["status"] for s in doc["steps"]} == {"cached"}
    assert doc["images"][0]["up_to_date"] is True
    seen = _requests(log, start, repo)
    assert [r for r in seen if r[0] not in ("GET", "HEAD")] == []  # zero writes
    assert len(seen) <= 1, seen  # one look at the tag: already the same index

    # Memoised (nothing racy any more): the replay plans nothing and asks the tag once.
    _backdate(proj, cache_dir)
    plain = ("run", proj, "--push", "--json", "--progress", "plain")
    assert "planning" in cli(*plain).stderr  # writes the memo
    start = log.stat().st_size
    replay = cli(*plain)
    assert replay.code == 0 and "planning" not in replay.stderr, replay.stderr
    assert replay.json()["images"][0]["up_to_date"] is True
    assert _requests(log, start, repo) == [("GET", f"/v2/{repo}/manifests/1.0")]

    # Someone else moves the tag: no replay, the run pushes the image again.
    other = tmp_path / "other"
    shutil.copytree(proj, other)
    (other / "plan.toml").write_text(toml.read_text().replace("shell-demo", "other-demo"))
    assert cli("run", other, "--push", "--json").code == 0
    start = log.stat().st_size
    again = cli(*plain)
    assert again.code == 0 and "planning" in again.stderr, again.stderr
    assert again.json()["images"][0]["up_to_date"] is False
    assert ("PUT", f"/v2/{repo}/manifests/1.0") in _requests(log, start, repo)
