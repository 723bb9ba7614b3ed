"""`plan report` on images the tests build and push: both platforms, sizes equal to what
the registry's manifests say (fetched independently with httpx), uncompressed sizes equal
to the gunzipped blobs, steps from the history, shared layers, deltas, layouts, errors."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from registry_proc import RegistryProc, free_port
from release_env import fetch_blob, fetch_manifest, retag, shell_copy
from testkit import Cli

from crossplan.release.render import human

pytestmark = pytest.mark.integration

REPO = "demo/shell"


@pytest.fixture
def project(tmp_path: Path, registry: RegistryProc) -> Path:
    return shell_copy(tmp_path / "proj", f"{registry.address}/{REPO}:1.0", arch_tags=True)


def push(cli: Cli, project: Path) -> None:
    res = cli("run", project, "--push", "--json")
    assert res.code == 0, res.stderr + res.stdout


def report(cli: Cli, *args: str | Path) -> dict[str, Any]:
    res = cli("report", *args, "--json")
    assert res.code == 0, res.stderr + res.stdout
    images: list[dict[str, Any]] = res.json()["images"]
    assert len(images) == 1
    return images[0]


def registry_view(address: str, tag: str) -> dict[str, dict[str, Any]]:
    """Platform -> {digest, compressed, layers: [(digest, size, uncompressed)]} via httpx."""
    index = fetch_manifest(address, REPO, tag)
    out = {}
    for entry in index["manifests"]:
        plat = f"{entry['platform']['os']}/{entry['platform']['architecture']}"
        manifest = fetch_manifest(address, REPO, entry["digest"])
        layers = [(x["digest"], x["size"],
                   len(gzip.decompress(fetch_blob(address, REPO, x["digest"]))))
                  for x in manifest["layers"]]
        out[plat] = {"digest": entry["digest"], "layers": layers,
                     "compressed": sum(x["size"] for x in manifest["layers"])}
    return out


def test_report_matches_the_registry(cli: Cli, project: Path, registry: RegistryProc) -> None:
    push(cli, project)
    image = report(cli, "-f", project)  # default: the plan's image tag
    assert image["reference"] == f"{registry.address}/{REPO}:1.0"
    want = registry_view(registry.address, "1.0")
    assert [p["platform"] for p in image["platforms"]] == ["linux/amd64", "linux/arm64"]
    assert set(want) == {"linux/amd64", "linux/arm64"}
    for p in image["platforms"]:
        w = want[p["platform"]]
        assert p["digest"] == w["digest"]
        assert p["compressed"] == w["compressed"]
        assert [(x["digest"], x["size"], x["uncompressed"]) for x in p["layers"]] == w["layers"]
        assert p["uncompressed"] == sum(u for _, _, u in w["layers"])
        assert [x["step"] for x in p["layers"]] == ["report", "gen"]  # the image's copy order
        assert [x["shared"] for x in p["layers"]] == [False, True]  # gen is the same bytes
    gen = image["platforms"][0]["layers"][1]["digest"]
    assert image["shared_layers"] == [gen]

    md = cli("report", "-f", project, "--format", "markdown")
    assert md.code == 0, md.stderr
    for p in image["platforms"]:
        assert (f"| {p['platform']} | {human(p['compressed'])} | {human(p['uncompressed'])} | 2 |"
                in md.stdout)
    assert "| `" + gen.split(":")[1][:12] + "` | `COPY --from=gen /srv/` | gen |" in md.stdout

    table = cli("report", f"{registry.address}/{REPO}:1.0-arm64")  # an arch tag: one manifest
    assert table.code == 0, table.stderr
    assert "linux/arm64" in table.stdout and "linux/amd64" not in table.stdout


def test_delta_against_the_previous_tag(cli: Cli, project: Path, registry: RegistryProc) -> None:
    push(cli, project)
    (project / "gen" / "b.txt").write_text("a longer second part of the greeting\n" * 20)
    retag(project, f"{registry.address}/{REPO}:1.1")
    push(cli, project)
    image = report(cli, "1.1", "--against", "1.0", "-f", project)
    assert image["against"]["reference"] == f"{registry.address}/{REPO}:1.0"
    new, old = registry_view(registry.address, "1.1"), registry_view(registry.address, "1.0")
    for d in image["delta"]:
        plat = d["platform"]
        assert d["status"] == "changed"
        assert d["compressed"] == new[plat]["compressed"] - old[plat]["compressed"]
        new_layers = {x[0] for x in new[plat]["layers"]}
        old_layers = {x[0] for x in old[plat]["layers"]}
        assert set(d["added_layers"]) == new_layers - old_layers
        assert set(d["removed_layers"]) == old_layers - new_layers
    assert len(image["delta"]) == 2


def test_report_on_a_layout_matches_the_pushed_image(
    cli: Cli, project: Path, registry: RegistryProc, tmp_path: Path
) -> None:
    push(cli, project)
    res = cli("run", project, "--output", f"oci:{tmp_path / 'layout'}")
    assert res.code == 0, res.stderr
    from_layout = report(cli, f"oci:{tmp_path / 'layout'}")
    from_registry = report(cli, f"{registry.address}/{REPO}:1.0")
    assert from_layout["digest"] == from_registry["digest"]
    assert from_layout["platforms"] == from_registry["platforms"]


def test_errors_have_exit_codes(cli: Cli, project: Path, registry: RegistryProc) -> None:
    down = cli("report", f"127.0.0.1:{free_port()}/{REPO}:1.0", "--json", timeout=120)
    assert down.code == 3, down.stderr
    assert down.json()["exit_code"] == 3 and "cannot reach registry" in down.stderr
    missing = cli("report", f"{registry.address}/{REPO}:9.9")
    assert missing.code == 2 and "not found" in missing.stderr
    assert cli("report", "-f", project, "--format", "yaml").code == 2
