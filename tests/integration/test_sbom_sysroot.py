"""A C image built against a Debian sysroot lists that sysroot's locked packages in its SBOM:
a program linking zlib statically (the sysroot's libz.a) into ``scratch`` for linux/amd64 and
linux/arm64, written to an OCI layout; each platform's SPDX document names zlib1g-dev with
the version and sha256 that ``sysroots.lock`` recorded for that architecture."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sysroot_kit import apt_ok, sysroot_env
from testkit import Cli, require_component

pytestmark = pytest.mark.integration

ZPROG = """#include <stdio.h>
#include <zlib.h>
int main(void) { printf("zlib %s\\n", zlibVersion()); return 0; }
"""
PLAN = """
[project]
name = "zsbom"
platforms = ["linux/amd64", "linux/arm64"]

[sysroots.z]
debian = "bookworm"
packages = ["zlib1g-dev"]

[steps.zver]
kind = "c"
src = "."
sysroot = "z"
libc = "gnu"
link = "static"
build = ["$CC $CFLAGS -o zver zver.c $LDFLAGS -lz"]
outputs = ["zver"]

[steps.image]
kind = "image"
base = "scratch"
copy = [{ from = "zver", src = "zver", dest = "/zver" }]
entrypoint = ["/zver"]
"""


def _sboms(layout: Path) -> dict[str, dict[str, Any]]:
    """Platform manifest digest -> its SPDX document, from the layout's referrers."""
    out = {}
    for e in json.loads((layout / "index.json").read_text())["manifests"]:
        if e.get("artifactType") != "application/spdx+json":
            continue
        doc = json.loads((layout / "blobs" / "sha256" / e["digest"][7:]).read_bytes())
        blob = layout / "blobs" / "sha256" / doc["layers"][0]["digest"][7:]
        out[doc["subject"]["digest"]] = json.loads(blob.read_bytes())
    return out


def test_sbom_lists_the_sysroot_packages_per_platform(tmp_path: Path, cli: Cli) -> None:
    require_component(apt_ok(), "apt-get and dpkg-deb")
    require_component(shutil.which("aarch64-linux-gnu-gcc") is not None, "gcc-aarch64-linux-gnu")
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "zver.c").write_text(ZPROG)
    (proj / "plan.toml").write_text(PLAN)
    layout = tmp_path / "layout"
    res = cli("run", proj, "--json", "--output", f"oci:{layout}", timeout=900,
              env=sysroot_env(tmp_path))
    assert res.code == 0, res.stdout + res.stderr
    lock = json.loads((proj / "sysroots.lock").read_text())["sysroots"]["z"]["arches"]
    image = json.loads(res.stdout)["images"][0]
    sboms = _sboms(layout)
    assert set(sboms) == set(image["manifests"].values()), (sboms.keys(), image["manifests"])
    for plat, arch in (("linux/amd64", "amd64"), ("linux/arm64", "arm64")):
        locked = {p["name"]: p for p in lock[arch]}["zlib1g-dev"]
        doc = sboms[image["manifests"][plat]]
        pkgs = [p for p in doc["packages"] if p["name"] == "zlib1g-dev"]
        assert pkgs, [p["name"] for p in doc["packages"]]
        assert pkgs[0]["versionInfo"] == locked["version"], pkgs[0]
        assert any(c.get("checksumValue") == locked["sha256"]
                   for c in pkgs[0].get("checksums", [])), pkgs[0]
        assert any(arch in r.get("referenceLocator", "")
                   for r in pkgs[0].get("externalRefs", [])), pkgs[0]
