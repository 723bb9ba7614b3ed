"""Attestations in OCI layouts (`--output oci:DIR`): two clean builds (separate stores,
separate project directories) give byte-identical SBOMs, provenance and even signatures
(deterministic ECDSA); `oras discover --oci-layout` lists them per platform; CycloneDX 1.5
on request validates against its schema; a Rust image's SBOM lists its Cargo.lock."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from attest_kit import Plan, go_project, keypair, run_tool, tool
from testkit import require_component

pytestmark = pytest.mark.integration

SPDX = "application/spdx+json"
CDX = "application/vnd.cyclonedx+json"
INTOTO = "application/vnd.in-toto+json"


def _referrers(layout: Path) -> dict[tuple[str, str], bytes]:
    """(subject, artifact type) -> the artifact's manifest and layer bytes, from index.json."""
    out = {}
    for e in json.loads((layout / "index.json").read_text())["manifests"]:
        if "artifactType" not in e:
            continue
        manifest = (layout / "blobs" / "sha256" / e["digest"][7:]).read_bytes()
        doc = json.loads(manifest)
        layers = b"".join((layout / "blobs" / "sha256" / d["digest"][7:]).read_bytes()
                          for d in doc["layers"])
        out[(doc["subject"]["digest"], e["artifactType"])] = manifest + layers
    return out


def _layer(layout: Path, subject: str, artifact_type: str) -> bytes:
    for e in json.loads((layout / "index.json").read_text())["manifests"]:
        if e.get("artifactType") == artifact_type:
            doc = json.loads((layout / "blobs" / "sha256" / e["digest"][7:]).read_bytes())
            if doc["subject"]["digest"] == subject:
                return (layout / "blobs" / "sha256" / doc["layers"][0]["digest"][7:]
                        ).read_bytes()
    raise AssertionError(f"no {artifact_type} for {subject}")


def test_two_clean_builds_give_identical_attestations(tmp_path: Path) -> None:
    key, _ = keypair(tmp_path / "keys")
    results: list[tuple[dict[str, Any], Path]] = []
    for n in ("one", "two"):
        proj = go_project(tmp_path / f"proj-{n}")
        layout = tmp_path / f"layout-{n}"
        plan = Plan(tmp_path / f"cache-{n}", tmp_path / n)
        out = plan.json("run", proj, "--output", f"oci:{layout}", "--sign-key", key)
        results.append((out["images"][0], layout))
    (a, la), (b, lb) = results
    assert a["index_digest"] == b["index_digest"]
    ra, rb = _referrers(la), _referrers(lb)
    assert len(ra) == 6, sorted(ra)  # 2 platforms x (sbom, provenance, signature)
    assert ra == rb
    for blob in ra.values():
        assert str(tmp_path).encode() not in blob  # no host path in any document
    pyspdxtools = Path(shutil.which("pyspdxtools") or
                       Path(__import__("sys").executable).parent / "pyspdxtools")
    for platform, digest in a["manifests"].items():
        res = run_tool(tool("oras"), "discover", "--format", "json", "--oci-layout",
                       f"{la}@{digest}")
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        found = doc.get("manifests") or doc.get("referrers") or []
        assert {r["artifactType"] for r in found} == {
            SPDX, INTOTO, "application/vnd.dev.cosign.artifact.sig.v1+json"}, platform
        sbom = tmp_path / f"{platform.replace('/', '-')}.spdx.json"
        sbom.write_bytes(_layer(la, digest, SPDX))
        res = run_tool(pyspdxtools, "-i", sbom)
        assert res.returncode == 0, res.stdout + res.stderr
        created = json.loads(sbom.read_text())["creationInfo"]["created"]
        assert created == "1970-01-01T00:00:00Z"  # SOURCE_DATE_EPOCH (unset: 0)


def test_cyclonedx_on_request_validates(tmp_path: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    proj = go_project(tmp_path / "proj", '\n[attest]\nsbom = "cyclonedx"\n')
    layout = tmp_path / "layout"
    out = Plan(tmp_path / "cache", tmp_path).json("run", proj, "--output", f"oci:{layout}")
    for digest in out["images"][0]["manifests"].values():
        text = _layer(layout, digest, CDX).decode()
        assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(text) is None
        names = {(c["name"], c.get("version")) for c in json.loads(text)["components"]}
        assert ("example.com/greet", "v0.1.0") in names
        assert ("/usr/local/bin/app", None) in names


CARGO_TOML = """[package]
name = "hello"
version = "0.1.0"
edition = "2021"

[dependencies]
greet = { path = "greet" }
"""
CARGO_LOCK = """version = 3

[[package]]
name = "greet"
version = "0.2.0"

[[package]]
name = "hello"
version = "0.1.0"
dependencies = [
 "greet",
]
"""


def test_rust_image_sbom_lists_cargo_lock_entries(tmp_path: Path) -> None:
    require_component(Path("/usr/bin/rustc").is_file(), "Debian's rustc (arm64 std) missing")
    proj = tmp_path / "proj"
    (proj / "rust" / "src").mkdir(parents=True)
    (proj / "rust" / "greet" / "src").mkdir(parents=True)
    (proj / "rust" / "Cargo.toml").write_text(CARGO_TOML)
    (proj / "rust" / "Cargo.lock").write_text(CARGO_LOCK)
    (proj / "rust" / "src" / "main.rs").write_text('fn main() { println!("{}", greet::hi()); }\n')
    (proj / "rust" / "greet" / "Cargo.toml").write_text(
        '[package]\nname = "greet"\nversion = "0.2.0"\nedition = "2021"\n')
    (proj / "rust" / "greet" / "src" / "lib.rs").write_text('pub fn hi() -> &\'static str '
                                                            '{ "hi" }\n')
    (proj / "plan.toml").write_text(
        '[project]\nname = "r"\nplatforms = ["linux/amd64", "linux/arm64"]\n\n'
        '[steps.hello]\nkind = "rust"\nsrc = "rust/"\n\n'
        '[steps.image]\nkind = "image"\n'
        'copy = [{ from = "hello", src = "hello", dest = "/usr/local/bin/hello" }]\n')
    layout = tmp_path / "layout"
    out = Plan(tmp_path / "cache", tmp_path).json("run", proj, "--output", f"oci:{layout}")
    for digest in out["images"][0]["manifests"].values():
        doc = json.loads(_layer(layout, digest, SPDX))
        cargo = {(p["name"], p["versionInfo"]) for p in doc["packages"]
                 if p.get("externalRefs", [{}])[0].get("referenceLocator", "").startswith(
                     "pkg:cargo/")}
        assert cargo == {("greet", "0.2.0"), ("hello", "0.1.0")}
        tools = [p for p in doc["packages"] if p.get("externalRefs", [{}])[0].get(
            "referenceLocator") == "pkg:generic/rust-toolchain"]
        assert tools and tools[0]["versionInfo"].startswith("rustc ")


DPKG_STATUS = ("Package: libfoo1\nStatus: install ok installed\nArchitecture: {arch}\n"
               "Version: 1.2-3\n\nPackage: gone\nStatus: deinstall ok config-files\n"
               "Version: 9\n")


def test_base_packages_come_from_the_base_dpkg_database(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "status.in").write_text(DPKG_STATUS)
    (base / "plan.toml").write_text(
        '[project]\nname = "base"\nplatforms = ["linux/amd64", "linux/arm64"]\n\n'
        '[steps.db]\nkind = "shell"\nsrc = "."\nexclude = ["plan.toml"]\n'
        'command = ["sh", "-c", "mkdir -p var/lib/dpkg && sed s/{arch}/$TARGETARCH/ status.in '
        '> var/lib/dpkg/status"]\noutputs = ["var"]\n\n'
        '[steps.rootfs]\nkind = "image"\ncopy = [{ from = "db", dest = "/" }]\n')
    plan = Plan(tmp_path / "cache", tmp_path)
    made = plan.json("run", base, "--output", f"oci:{tmp_path / 'base-layout'}")
    written = next(n for n in made["images"][0]["notes"] if n.startswith("wrote "))
    app = go_project(tmp_path / "app")
    toml = (app / "plan.toml").read_text().replace(
        '[steps.image]\nkind = "image"\n', f'[steps.image]\nkind = "image"\nbase = '
        f'"{written.removeprefix("wrote ")}"\n')
    (app / "plan.toml").write_text(toml)
    layout = tmp_path / "layout"
    out = plan.json("run", app, "--output", f"oci:{layout}")
    for platform, digest in out["images"][0]["manifests"].items():
        doc = json.loads(_layer(layout, digest, SPDX))
        debs = {(p["name"], p["versionInfo"], p["externalRefs"][0]["referenceLocator"])
                for p in doc["packages"]
                if p.get("externalRefs", [{}])[0].get("referenceLocator", "").startswith(
                    "pkg:deb/")}
        arch = platform.split("/")[1]
        assert debs == {("libfoo1", "1.2-3", f"pkg:deb/debian/libfoo1@1.2-3?arch={arch}")}
        base_files = [f for f in doc["files"] if f["fileName"] == "./var/lib/dpkg/status"]
        assert base_files and "base image" in base_files[0]["comment"]
        assert any(p["SPDXID"] == "SPDXRef-Base" for p in doc["packages"])
