"""`plan lock` against a real registry: a locally made two-platform base is locked per
platform; the lock enters the image's key; when a platform is deleted from the base,
`plan run` fails naming the base and the platform (never builds without it) and
`plan lock --update` reports the removal."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from testkit import Cli

from crossplan.backends.oci.registry import RegistryClient

pytestmark = pytest.mark.integration

REGISTRY = "127.0.0.1:5000"
NOTE = ('kind = "shell"\nsrc = "."\nexclude = ["plan.toml", "plan.lock", "saved.lock"]\n'
        'command = ["sh", "-c", "echo $TARGETARCH > note.txt"]\noutputs = ["note.txt"]\n')


def _project(root: Path, base: str, tags: str = "") -> Path:
    root.mkdir(parents=True)
    (root / "plan.toml").write_text(
        '[project]\nname = "lockdemo"\nplatforms = ["linux/amd64", "linux/arm64"]\n\n'
        f"[steps.note]\n{NOTE}\n"
        f'[steps.image]\nkind = "image"\nbase = "{base}"\n'
        'copy = [{ from = "note", dest = "/etc/" }]\n' + (f"tags = [{tags}]\n" if tags else ""))
    return root


def _image_key(res_json: dict[str, object]) -> str:
    steps = res_json["steps"]
    assert isinstance(steps, list)
    return str(next(s["key"] for s in steps if s["id"] == "image"))


def test_lock_pins_bases_and_a_deleted_platform_fails_clearly(cli: Cli, tmp_path: Path) -> None:
    repo = f"crossplan-test/lock-base-{uuid.uuid4().hex[:8]}"
    base = f"{REGISTRY}/{repo}:1"
    made = cli("run", _project(tmp_path / "base", "scratch", f'"{base}"'), "--push", "--json")
    assert made.code == 0, made.stderr
    proj = _project(tmp_path / "app", base)

    res = cli("lock", proj, "--json")
    assert res.code == 0, res.stderr
    locked = res.json()["lock"]["bases"][base]
    assert sorted(locked["platforms"]) == ["linux/amd64", "linux/arm64"]
    assert locked["digest"] == made.json()["images"][0]["index_digest"]
    assert json.loads((proj / "plan.lock").read_text())["bases"][base] == locked

    run = cli("run", proj, "--json")
    assert run.code == 0, run.stderr
    key_locked = _image_key(run.json())
    (proj / "plan.lock").rename(proj / "saved.lock")
    unlocked = cli("run", proj, "--json")
    assert unlocked.code == 0, unlocked.stderr
    assert _image_key(unlocked.json()) != key_locked  # the lock enters the key
    (proj / "saved.lock").rename(proj / "plan.lock")

    # Delete linux/arm64 from the base: the tag names a new one-platform index and the
    # old index is gone from the registry.
    with RegistryClient(REGISTRY) as reg:
        found = reg.get_manifest(repo, "1")
        assert found is not None
        index = json.loads(found[0])
        index["manifests"] = [m for m in index["manifests"]
                              if m["platform"]["architecture"] != "arm64"]
        reg.put_manifest(repo, "1", json.dumps(index).encode(), found[1])
        reg.delete_manifest(repo, locked["digest"])

    run = cli("run", proj)
    assert run.code == 2, run.stdout + run.stderr
    assert base in run.stderr and "linux/arm64" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr

    update = cli("lock", proj, "--update", "--json")
    assert update.code == 0, update.stderr
    changes = {(c["platform"], c["change"]) for c in update.json()["changes"]
               if c["image"] == base}
    assert (None, "changed") in changes
    assert ("linux/arm64", "removed") in changes
    assert ("linux/amd64", "unchanged") in changes
    assert any("linux/arm64" in w for w in update.json()["warnings"])
    shown = cli("lock", proj, "--update")
    assert "up to date" in shown.stdout, shown.stdout

    run = cli("run", proj)
    assert run.code == 2
    assert f"base {base} has no linux/arm64 image" in run.stderr, run.stderr
    assert cli("run", proj, "--platform", "linux/amd64").code == 0
