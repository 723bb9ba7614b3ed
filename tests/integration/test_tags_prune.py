"""`plan tags prune` against a real registry: a dry run deletes nothing; `--yes` deletes
exactly the old releases' tags, never a digest a kept tag still uses, and every kept index
stays complete."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from registry_proc import RegistryProc, free_port
from release_env import ACCEPT, fetch_manifest, retag, shell_copy
from testkit import Cli

from crossplan.backends.oci import (
    ImageSpec,
    LayerEntry,
    LayerSpec,
    RegistryClient,
    build_index,
    push_index,
)
from crossplan.backends.oci.image import BuiltIndex
from crossplan.backends.oci.mediatypes import OCI_MANIFEST
from crossplan.platforms import Platform

pytestmark = pytest.mark.integration

AMD, ARM = Platform("linux", "amd64"), Platform("linux", "arm64")
REPO = "demo/app"
DAY = 86400


def image(amd: str, arm: str, created: int) -> BuiltIndex:
    """Two platforms; same ``amd`` text -> the same amd64 manifest across releases."""
    def spec(text: str) -> ImageSpec:
        entry = LayerEntry("/app/version", data=text.encode())
        return ImageSpec(layers=[LayerSpec((entry,), "COPY --from=app /app/")])

    return build_index({AMD: spec(amd), ARM: spec(arm)}, created=created)


def all_manifests_resolve(address: str) -> dict[str, str]:
    """Tag -> digest of every tag; asserts each index's platform manifests still exist."""
    tags = httpx.get(f"http://{address}/v2/{REPO}/tags/list", timeout=30).json()["tags"] or []
    out = {}
    for tag in tags:
        resp = httpx.get(f"http://{address}/v2/{REPO}/manifests/{tag}",
                         headers={"Accept": ACCEPT}, timeout=30)
        assert resp.status_code == 200, tag
        out[tag] = resp.headers["docker-content-digest"]
        for child in resp.json().get("manifests", []):
            assert fetch_manifest(address, REPO, child["digest"])["layers"], (tag, child)
    return out


def gone(address: str, digest: str) -> bool:
    resp = httpx.get(f"http://{address}/v2/{REPO}/manifests/{digest}",
                     headers={"Accept": ACCEPT}, timeout=30)
    return resp.status_code == 404


def test_prune_keeps_the_newest_and_every_digest_they_use(
    cli: Cli, registry: RegistryProc
) -> None:
    target = f"{registry.address}/{REPO}"
    v10 = image("amd v1", "arm v1", 1 * DAY)
    v11 = image("amd v1", "arm v2", 2 * DAY)  # amd64 unchanged: 1.0-amd64 == a 1.1 manifest
    beta = image("amd v3", "arm v3", 3 * DAY)  # newest by time, though not by version
    nightly = image("nightly", "nightly", 0)
    push_index(v10, f"{target}:1.0", arch_tags=True)
    push_index(v11, f"{target}:1.1", arch_tags=True)
    push_index(beta, f"{target}:2.0-beta", tags=["latest"], arch_tags=True)
    push_index(nightly, f"{target}:nightly")
    with RegistryClient(registry.address) as client:  # nightly: a single manifest, 1970
        client.put_manifest(REPO, "nightly", nightly.images[AMD].manifest, OCI_MANIFEST)
    before = all_manifests_resolve(registry.address)
    assert len(before) == 13

    dry = cli("tags", "prune", target, "--keep", "2", "--json")
    assert dry.code == 0, dry.stderr
    plan = dry.json()
    assert plan["dry_run"] is True
    assert sorted(plan["delete"]) == ["1.0", "1.0-arm64", "nightly"], plan["tags"]
    assert all_manifests_resolve(registry.address) == before  # a dry run deletes nothing
    why = {t["tag"]: t["reason"] for t in plan["tags"]}
    assert why["1.0-amd64"] == "its digest is used by kept tag 1.1"
    assert why["latest"] == why["2.0-beta"] == "newest 2 (#1)"  # one image, one release
    assert set(plan["manifests"]) == {v10.digest, v10.images[ARM].digest,
                                      nightly.images[AMD].digest}

    text = cli("tags", "prune", target, "--keep", "2")  # the rich table says the same
    assert text.code == 0 and "dry run: would delete 3 tag(s)" in text.stdout

    done = cli("tags", "prune", target, "--keep", "2", "--yes", "--json")
    assert done.code == 0, done.stderr
    after = all_manifests_resolve(registry.address)  # kept indexes are complete
    assert sorted(after) == sorted(set(before) - {"1.0", "1.0-arm64", "nightly"})
    assert sorted(done.json()["remaining"]) == sorted(after)
    assert {t: before[t] for t in after} == after  # nothing kept changed
    assert gone(registry.address, v10.digest) and gone(registry.address, v10.images[ARM].digest)
    assert not gone(registry.address, v10.images[AMD].digest)  # 1.1 still lists it

    again = cli("tags", "prune", target, "--keep", "2", "--yes", "--json")
    assert again.code == 0 and again.json()["delete"] == []


def test_prune_releases_built_by_plan(cli: Cli, registry: RegistryProc, tmp_path: Path) -> None:
    """Three `plan run --push` releases with arch tags; equal created times (one
    SOURCE_DATE_EPOCH), so version order decides: 1.10 > 1.9 > 1.8."""
    target = f"{registry.address}/{REPO}"
    project = shell_copy(tmp_path / "proj", f"{target}:1.8", arch_tags=True)
    for n, version in enumerate(("1.8", "1.9", "1.10")):
        (project / "gen" / "b.txt").write_text(f"release {n}\n")
        retag(project, f"{target}:{version}", arch_tags=True)
        res = cli("run", project, "--push")
        assert res.code == 0, res.stderr
    tags = sorted(all_manifests_resolve(registry.address))
    # each platform manifest also has its attestations' referrers tag (sha256-<hex>): never
    # a release; pruned with the manifest it is about
    assert len([t for t in tags if not t.startswith("sha256-")]) == 9
    assert len(tags) == 9 + 6
    res = cli("tags", "prune", target, "--keep", "1", "--yes", "--json")
    assert res.code == 0, res.stderr
    after = all_manifests_resolve(registry.address)
    assert sorted(t for t in after if not t.startswith("sha256-")) == [
        "1.10", "1.10-amd64", "1.10-arm64"]
    assert {t for t in after if t.startswith("sha256-")} == {
        after[t].replace(":", "-") for t in ("1.10-amd64", "1.10-arm64")}


def test_usage_and_environment_errors(cli: Cli, registry: RegistryProc) -> None:
    assert cli("tags", "prune", f"{registry.address}/{REPO}", "--keep", "0").code == 2
    tagged = cli("tags", "prune", f"{registry.address}/{REPO}:1.0", "--keep", "1")
    assert tagged.code == 2 and "repository only" in tagged.stderr
    down = cli("tags", "prune", f"127.0.0.1:{free_port()}/{REPO}", "--keep", "1", "--json")
    assert down.code == 3 and down.json()["exit_code"] == 3
