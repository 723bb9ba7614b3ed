"""A registry base's layers are kept in the store by digest once an image is built on it:
an image rebuilt on the same base (an edit of what it copies) downloads no layer again, the
kept layer is the image entry's own blob (one inode), and a kept layer that no longer
hashes to its name is downloaded again. Counted in the real registry's access log."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from pathlib import Path

import pytest
from test_lock_bases import _project
from test_noop_push import REGISTRY, _registry_log, _requests
from testkit import Cli

pytestmark = pytest.mark.integration


def _blob_gets(requests: list[tuple[str, str]]) -> list[str]:
    return [p.rsplit("/", 1)[1] for m, p in requests if m == "GET" and "/blobs/" in p]


def _edit(proj: Path, text: str) -> None:
    toml = proj / "plan.toml"
    toml.write_text(re.sub(r"echo [^>]*\$TARGETARCH", f"echo {text} $TARGETARCH",
                           toml.read_text()))


def test_an_image_rebuilt_on_the_same_base_downloads_no_layer(
    cli: Cli, tmp_path: Path, cache_dir: Path,
) -> None:
    log = _registry_log()
    repo = f"crossplan-test/layers-{uuid.uuid4().hex[:8]}"
    base = f"{REGISTRY}/{repo}:1"
    made = cli("run", _project(tmp_path / "base", "scratch", f'"{base}"'), "--push", "--json",
               env={"CROSSPLAN_CACHE_DIR": str(tmp_path / "elsewhere")})  # as if pulled
    assert made.code == 0, made.stderr
    proj = _project(tmp_path / "app", base)
    _edit(proj, "v1")  # (the same command would copy a layer equal to the base's)

    start = log.stat().st_size
    first = cli("run", proj, "--json")
    assert first.code == 0, first.stderr
    kept = {p.name: p for p in (cache_dir / "layers").glob("*/*")}
    assert len(kept) == 2, kept  # the base's layer of each platform
    gets = _blob_gets(_requests(log, start, repo))
    for name, path in kept.items():
        assert gets.count(f"sha256:{name}") == 1, gets  # downloaded once, to be kept
        assert hashlib.sha256(path.read_bytes()).hexdigest() == name
        assert path.stat().st_mode & 0o222 == 0  # read-only
        assert path.stat().st_nlink >= 2  # also the image entry's blob: no space twice

    _edit(proj, "v2")  # what the image copies changes: the image is built again
    start = log.stat().st_size
    again = cli("run", proj, "--json")
    assert again.code == 0, again.stderr
    assert {s["id"]: s["status"] for s in again.json()["steps"]}["image"] == "built"
    assert _blob_gets(_requests(log, start, repo)) == []  # configs and layers from the store
    dist = tmp_path / "dist"
    out = cli("run", proj, "--output", f"oci:{dist}")
    assert out.code == 0, out.stderr
    for name in kept:  # the rebuilt image holds the base's layers, whole
        blob = dist / "blobs" / "sha256" / name
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == name

    # a kept layer that no longer hashes to its name is downloaded again (and kept anew)
    name, path = sorted(kept.items())[0]
    os.chmod(path, 0o644)
    path.write_bytes(b"not the layer")
    _edit(proj, "v3")
    start = log.stat().st_size
    mended = cli("run", proj, "--json")
    assert mended.code == 0, mended.stderr
    assert _blob_gets(_requests(log, start, repo)) == [f"sha256:{name}"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == name
