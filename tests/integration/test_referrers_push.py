"""A two-platform Go image pushed to the local registry with `--sign-key`: per platform
manifest `oras discover` lists an SBOM, a provenance and a signature; stock `cosign verify`
and `cosign verify-attestation --type slsaprovenance1` accept them; `pyspdxtools` validates
each SPDX document; the SBOM lists the modules `go version -m` reports for that binary; the
provenance lets anyone recompute every step's key; the index is the same without
attestations; `plan report` lists what is attached."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from attest_kit import PASSWORD, REGISTRY, Plan, go_project, keypair, run_tool, tool

from crossplan.planner.keys import final_key

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("attest")
    repo = f"{REGISTRY}/crossplan-test/attest-{uuid.uuid4().hex[:8]}"
    key, pub = keypair(tmp / "keys")
    proj = go_project(tmp / "proj", tags=f'"{repo}:1.0"')
    plan = Plan(tmp / "cache", tmp)
    out = plan.json("run", proj, "--push", "--sign-key", key, "--export", tmp / "export")
    plain = go_project(tmp / "plain", '\n[attest]\nsbom = "none"\nprovenance = false\n',
                       tags=f'"{repo}-plain:1.0"')
    out_plain = plan.json("run", plain, "--push")
    return {"repo": repo, "pub": pub, "out": out, "plain": out_plain, "tmp": tmp,
            "plan": plan, "proj": proj}


def _image(pushed: dict[str, Any]) -> dict[str, Any]:
    image: dict[str, Any] = pushed["out"]["images"][0]
    return image


def _discover(repo: str, digest: str) -> list[dict[str, Any]]:
    res = run_tool(tool("oras"), "discover", "--plain-http", "--format", "json",
                   f"{repo}@{digest}")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    found: list[dict[str, Any]] = doc.get("manifests") or doc.get("referrers") or []
    return found


def _pull(repo: str, digest: str, dest: Path) -> Path:
    res = run_tool(tool("oras"), "pull", "--plain-http", "-o", dest, f"{repo}@{digest}")
    assert res.returncode == 0, res.stderr
    files = [p for p in dest.iterdir() if p.is_file()]
    assert len(files) == 1, files
    return files[0]


def test_oras_discover_lists_sbom_provenance_signature_per_platform(
        pushed: dict[str, Any]) -> None:
    image = _image(pushed)
    assert sorted(image["manifests"]) == ["linux/amd64", "linux/arm64"]
    for digest in image["manifests"].values():
        types = sorted(r["artifactType"] for r in _discover(pushed["repo"], digest))
        assert types == ["application/spdx+json", "application/vnd.dev.cosign.artifact.sig.v1+json",
                         "application/vnd.in-toto+json"], types


def test_cosign_verifies_index_platforms_and_provenance(pushed: dict[str, Any]) -> None:
    cosign, repo, pub = tool("cosign"), pushed["repo"], pushed["pub"]
    image = _image(pushed)
    flags = ["--key", pub, "--insecure-ignore-tlog", "--allow-http-registry"]
    res = run_tool(cosign, "verify", *flags, f"{repo}:1.0")
    assert res.returncode == 0, res.stderr
    assert image["index_digest"] in res.stdout
    for digest in image["manifests"].values():
        res = run_tool(cosign, "verify", *flags, f"{repo}@{digest}")
        assert res.returncode == 0, res.stderr
        assert digest in res.stdout
        res = run_tool(cosign, "verify-attestation", *flags, "--type", "slsaprovenance1",
                       f"{repo}@{digest}")
        assert res.returncode == 0, res.stderr
        env = json.loads(res.stdout.splitlines()[0])
        import base64

        statement = json.loads(base64.b64decode(env["payload"]))
        assert statement["subject"][0]["digest"]["sha256"] == digest.partition(":")[2]
        res = run_tool(cosign, "verify-attestation", *flags, "--type", "spdxjson",
                       f"{repo}@{digest}")
        assert res.returncode == 0, res.stderr
        # The referrer signature (cosign's OCI 1.1 form) verifies on its own too.
        res = run_tool(cosign, "verify", "--experimental-oci11", *flags, f"{repo}@{digest}",
                       env={"COSIGN_EXPERIMENTAL": "1"})
        assert res.returncode == 0, res.stderr
    # A different key is refused: the signatures are really checked.
    other, other_pub = keypair(pushed["tmp"] / "other")
    res = run_tool(cosign, "verify", "--key", other_pub, "--insecure-ignore-tlog",
                   "--allow-http-registry", f"{repo}:1.0")
    assert res.returncode != 0
    assert other.exists() and PASSWORD


def test_each_sbom_is_valid_spdx_and_lists_the_go_modules(pushed: dict[str, Any]) -> None:
    image, repo, tmp = _image(pushed), pushed["repo"], pushed["tmp"]
    go = shutil.which("go", path=str(Path(sys.executable).parent)) or shutil.which("go")
    assert go, "go is installed with the toolchains extra"
    for platform, digest in image["manifests"].items():
        sbom_ref = next(r for r in _discover(repo, digest)
                        if r["artifactType"] == "application/spdx+json")
        path = _pull(repo, sbom_ref["digest"], tmp / f"sbom-{platform.replace('/', '-')}")
        res = run_tool(Path(sys.executable).parent / "pyspdxtools", "-i", path)
        assert res.returncode == 0, res.stdout + res.stderr
        doc = json.loads(path.read_text())
        mods = {(p["name"], p.get("versionInfo")) for p in doc["packages"]
                if any(r["referenceLocator"].startswith("pkg:golang/") and "std@" not in
                       r["referenceLocator"] for r in p.get("externalRefs", []))}
        binary = tmp / "export" / "app" / platform.replace("/", "_") / "app"
        shown = subprocess.run([go, "version", "-m", str(binary)], capture_output=True,
                               text=True, check=True).stdout
        expected = {(parts[1], parts[2]) for line in shown.splitlines()
                    if (parts := line.strip().split("\t"))[0] in ("mod", "dep")}
        assert ("example.com/greet", "v0.1.0") in expected
        assert mods == expected, (mods, expected)
        files = {f["fileName"] for f in doc["files"]}
        assert files == {"./usr/local/bin/app"}
        rels = {(r["spdxElementId"], r["relationshipType"]) for r in doc["relationships"]}
        assert any(t == "GENERATED_FROM" for _, t in rels)
        assert any(t == "CONTAINS" for _, t in rels)


def test_provenance_rederives_every_key(pushed: dict[str, Any]) -> None:
    image, repo, tmp = _image(pushed), pushed["repo"], pushed["tmp"]
    keys = {f"{s['id']}@{s['platform']}" if s["platform"] != "any" else s["id"]: s["key"]
            for s in pushed["out"]["steps"]}
    for platform, digest in image["manifests"].items():
        prov = next(r for r in _discover(repo, digest)
                    if r["artifactType"] == "application/vnd.in-toto+json")
        env = json.loads(_pull(repo, prov["digest"], tmp / f"prov-{platform[6:]}").read_text())
        import base64

        statement = json.loads(base64.b64decode(env["payload"]))
        assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
        build = statement["predicate"]["buildDefinition"]
        steps = build["internalParameters"]["steps"]
        assert {s["node"] for s in steps} == {"image", f"app@{platform}"}
        for s in steps:
            assert final_key(s["components"], s["deps"]) == s["key"] == keys[s["node"]]
        names = {d["name"] for d in build["resolvedDependencies"]}
        assert {"source:app", "toolchain:app"} <= names


def test_index_is_the_same_with_and_without_attestations(pushed: dict[str, Any]) -> None:
    with_att, without = _image(pushed), pushed["plain"]["images"][0]
    assert without["attestations"] == {}
    assert with_att["index_digest"] == without["index_digest"]
    assert with_att["manifests"] == without["manifests"]
    for digest in without["manifests"].values():
        assert _discover(f"{pushed['repo']}-plain", digest) == []


def test_plan_report_lists_what_is_attached(pushed: dict[str, Any]) -> None:
    plan: Plan = pushed["plan"]
    doc = plan.json("report", f"{pushed['repo']}:1.0")
    attached = {p["platform"]: sorted(a["kind"] for a in p["attached"])
                for p in doc["images"][0]["platforms"]}
    assert attached == {"linux/amd64": ["provenance", "sbom", "signature"],
                        "linux/arm64": ["provenance", "sbom", "signature"]}
    res = plan("report", f"{pushed['repo']}:1.0")
    assert "provenance, sbom, signature" in res.stdout, res.stdout
