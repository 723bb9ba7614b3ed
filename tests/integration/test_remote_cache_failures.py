"""The remote cache never fails a build: a stopped registry, a corrupt, truncated or deleted
blob in its storage, a read-only registry and one that wants a login each become a warning,
a local build and exit 0."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from registry_proc import RegistryProc
from testkit import EXAMPLES, Cli, CliResult

pytestmark = pytest.mark.integration

NODES = {"gen", "count", "report@linux/amd64", "report@linux/arm64", "image"}
REPO = "demo/plan-cache"
VICTIM = "report@linux/arm64"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    dest = tmp_path / "proj"
    shutil.copytree(EXAMPLES / "shell", dest)
    return dest


def run(cli: Cli, project: Path, store: Path, remote: str, *args: str,
        env: dict[str, str] | None = None) -> CliResult:
    res = cli("run", project, "--json", "--cache-remote", remote, *args,
              env={"CROSSPLAN_CACHE_DIR": str(store), **(env or {})})
    assert res.code == 0, res.stderr + res.stdout
    return res


def warm(cli: Cli, project: Path, registry: RegistryProc, tmp_path: Path) -> CliResult:
    first = run(cli, project, tmp_path / "warm", f"{registry.address}/{REPO}",
                "--output", f"oci:{tmp_path / 'out-warm'}")
    assert first.statuses() == dict.fromkeys(NODES, "built")
    return first


def victim_sha256(first: CliResult, tmp_path: Path) -> str:
    """The registry digest of report@linux/arm64's output (read from the warm store)."""
    (blake3,) = first.steps()[VICTIM]["outputs"].values()
    data = (tmp_path / "warm" / "blobs" / blake3[:2] / blake3).read_bytes()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_stopped_registry_is_one_warning_and_a_local_build(
    cli: Cli, project: Path, registry: RegistryProc, tmp_path: Path
) -> None:
    warm(cli, project, registry, tmp_path)
    registry.stop()
    res = run(cli, project, tmp_path / "cold", f"{registry.address}/{REPO}")
    assert res.statuses() == dict.fromkeys(NODES, "built")
    (warning,) = res.json()["warnings"]
    assert "unreachable" in warning and registry.address in warning
    assert res.stderr.count("unreachable") == 1

    ex = cli("explain", "gen", "-f", project, "--json", "--cache-remote",
             f"{registry.address}/{REPO}", env={"CROSSPLAN_CACHE_DIR": str(tmp_path / "cold")})
    assert ex.code == 0 and ex.json()["remote"] is None and "unreachable" in ex.stderr


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_blob_is_detected_discarded_and_rebuilt(
    cli: Cli, project: Path, registry: RegistryProc, tmp_path: Path, damage: str
) -> None:
    first = warm(cli, project, registry, tmp_path)
    blob = registry.blob_file(victim_sha256(first, tmp_path))
    data = blob.read_bytes()
    blob.write_bytes(data[:-5] if damage == "truncate" else data[:3] + b"X" + data[4:])

    res = run(cli, project, tmp_path / "s2", f"{registry.address}/{REPO}",
              "--output", f"oci:{tmp_path / 'out2'}")
    st = res.statuses()
    assert st.pop(VICTIM) == "built"
    assert set(st.values()) == {"substituted"}  # the rebuilt output is identical: same keys
    (warning,) = res.json()["warnings"]
    assert first.steps()[VICTIM]["key"] in warning and "corrupt" in warning
    assert res.steps()[VICTIM]["outputs"] == first.steps()[VICTIM]["outputs"]
    first_index = first.json()["images"][0]["index_digest"]
    assert res.json()["images"][0]["index_digest"] == first_index
    (blake3,) = first.steps()[VICTIM]["outputs"].values()
    stored = (tmp_path / "s2" / "blobs" / blake3[:2] / blake3).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == blob.parent.name  # the good bytes, rebuilt


def test_missing_blob_behind_a_manifest_is_a_miss_and_the_push_repairs_it(
    cli: Cli, project: Path, registry: RegistryProc, tmp_path: Path
) -> None:
    first = warm(cli, project, registry, tmp_path)
    blob = registry.blob_file(victim_sha256(first, tmp_path))
    blob.unlink()
    remote = f"{registry.address}/{REPO}"
    res = run(cli, project, tmp_path / "s2", remote)
    st = res.statuses()
    assert st.pop(VICTIM) == "built" and set(st.values()) == {"substituted"}
    (warning,) = res.json()["warnings"]
    assert "incomplete" in warning and first.steps()[VICTIM]["key"] in warning
    assert blob.exists()  # pushed again after the local build
    again = run(cli, project, tmp_path / "s3", remote)
    assert set(again.statuses().values()) == {"substituted"} and again.json()["warnings"] == []


def test_push_failure_keeps_the_local_result(
    cli: Cli, project: Path, tmp_path: Path
) -> None:
    readonly = RegistryProc(tmp_path / "ro").start(readonly=True)
    try:
        res = run(cli, project, tmp_path / "s1", f"{readonly.address}/{REPO}")
    finally:
        readonly.stop()
    assert res.statuses() == dict.fromkeys(NODES, "built")
    (warning,) = res.json()["warnings"]
    assert "could not push" in warning and "local result is kept" in warning
    local = cli("run", project, "--json", env={"CROSSPLAN_CACHE_DIR": str(tmp_path / "s1")})
    assert set(local.statuses().values()) == {"cached"}


def test_auth_failure_says_how_to_log_in(cli: Cli, project: Path, tmp_path: Path) -> None:
    locked = RegistryProc(tmp_path / "auth", auth=True).start()
    (tmp_path / "docker-config").mkdir()
    try:
        res = run(cli, project, tmp_path / "s1", f"{locked.address}/{REPO}",
                  env={"DOCKER_CONFIG": str(tmp_path / "docker-config")})
    finally:
        locked.stop()
    assert res.statuses() == dict.fromkeys(NODES, "built")
    (warning,) = res.json()["warnings"]
    assert "denied" in warning and "HTTP 401" in warning
    assert f"docker login {locked.address}" in warning
