"""buildx backend against the real engine and registry: a Go and a C binary for
linux/amd64 + linux/arm64, pushed as one OCI index (both strategies), compiled on the host
or in BUILDPLATFORM containers; the registry cache after `docker buildx prune -af`."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx
import pytest
from buildx_env import (
    BASE_IMAGE,
    REGISTRY,
    Plan,
    cached_steps,
    docker_run,
    example,
    make_plan_runner,
    platforms_of,
    raw,
    registry_tags,
    sh,
    unique,
)

pytestmark = [
    pytest.mark.integration, pytest.mark.timeout(2400), pytest.mark.usefixtures("buildx_engine"),
]
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EXPECTED = {p: f"hello from go on {p.split('/')[1]}\nhello from c on {p.split('/')[1]}\n"
            for p in ("linux/amd64", "linux/arm64")}


def manifest_digest(repo: str, ref: str) -> tuple[str, str]:
    resp = httpx.get(f"http://{REGISTRY}/v2/{repo}/manifests/{ref}", timeout=10,
                     headers={"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"})
    resp.raise_for_status()
    return "sha256:" + hashlib.sha256(resp.content).hexdigest(), resp.headers["content-type"]


def check_pushed(repo: str, result: dict[str, object]) -> dict[str, str]:
    """The registry holds an OCI index of exactly our two platforms under every tag, and
    each arch tag is that platform's manifest; returns platform -> manifest digest."""
    index = raw(f"{REGISTRY}/{repo}:1.0")
    assert index["mediaType"] == OCI_INDEX
    assert platforms_of(index) == {"linux/amd64", "linux/arm64"}
    assert len(index["manifests"]) == 2  # --provenance=false: no attestation manifests
    tags = {"1.0", "latest", "1.0-amd64", "1.0-arm64", "latest-amd64", "latest-arm64"}
    assert tags <= registry_tags(repo)
    digest, _ = manifest_digest(repo, "1.0")
    assert manifest_digest(repo, "latest")[0] == digest
    assert result["index_digest"] == digest
    by_arch = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
    for arch, want in by_arch.items():
        for tag in ("1.0", "latest"):
            got, media_type = manifest_digest(repo, f"{tag}-{arch}")
            assert (got, media_type) == (want, OCI_MANIFEST), f"{tag}-{arch}"
    pushed = set(result["pushed"])  # type: ignore[call-overload]
    assert {f"{REGISTRY}/{repo}:{t}" for t in tags} == pushed
    return {f"linux/{a}": d for a, d in by_arch.items()}


def run_both(ref: str) -> None:
    sh("docker", "image", "rm", "-f", ref, check=False)  # docker run must pull the pushed one
    for platform, want in EXPECTED.items():
        assert docker_run(ref, platform) == want, platform


def test_host_compile_multi_platform_push(plan: Plan, tmp_path: Path) -> None:
    repo = unique("host")
    proj = example(tmp_path / "proj", repo=repo)
    t0 = time.monotonic()
    res = plan.ok("run", proj, "--push", "--json")
    cold = time.monotonic() - t0
    assert {s["status"] for s in res["steps"]} == {"built"}
    assert [s["id"] for s in res["steps"] if s["platform"] == "any"] == ["image"]
    image = res["images"][0]
    assert any("one multi-platform build" in n for n in image["notes"])
    assert not any("differs" in n for n in image["notes"]), image["notes"]
    check_pushed(repo, image)
    run_both(f"{REGISTRY}/{repo}:1.0")
    # The image node's store entry is the OCI layout buildx exported: the rerun is cached.
    t0 = time.monotonic()
    again = plan.ok("run", proj, "--json")
    warm = time.monotonic() - t0
    assert {s["status"] for s in again["steps"]} == {"cached"}
    assert again["images"][0]["index_digest"] == image["index_digest"]
    # ... and --push again is buildx with a warm local cache: same digest.
    t0 = time.monotonic()
    repush = plan.ok("run", proj, "--push", "--json")
    push_warm = time.monotonic() - t0
    assert repush["images"][0]["index_digest"] == image["index_digest"]
    # plan test: the stored build, loaded into the engine, run for each platform.
    tested = plan.ok("test", "-f", proj, "--json")
    assert tested["ok"]
    assert [r["platform"] for r in tested["images"][0]["results"]] == list(EXPECTED)
    tested = plan.ok("test", "-f", proj, "--pushed", "--json")
    assert tested["ok"] and tested["images"][0]["source"] == "registry"
    print(f"\n[figures] host compile + multi-platform build + push, cold store: {cold:.1f}s; "
          f"rerun (cached): {warm:.1f}s; push again (warm buildx cache): {push_warm:.1f}s")


def test_per_platform_strategy_forced(plan: Plan, tmp_path: Path) -> None:
    repo = unique("perplat")
    proj = example(tmp_path / "proj", repo=repo, strategy="per-platform")
    t0 = time.monotonic()
    res = plan.ok("run", proj, "--push", "--json")
    secs = time.monotonic() - t0
    image = res["images"][0]
    assert any("per-platform images, joined by `docker buildx imagetools create`" in n
               for n in image["notes"]), image["notes"]
    check_pushed(repo, image)
    run_both(f"{REGISTRY}/{repo}:latest")
    log = plan.log("image.push.log")
    assert log.count("--platform linux/amd64 ") == 1 and log.count("--platform linux/arm64 ") == 1
    assert "imagetools create" in log
    # the local (store) build is per platform too, merged into one layout
    assert plan.log("image.log").count("docker buildx build") == 2
    print(f"\n[figures] per-platform strategy, build + push: {secs:.1f}s")


def test_container_compile_push_and_registry_cache(plan: Plan, tmp_path: Path) -> None:
    repo = unique("container")
    proj = example(tmp_path / "proj", repo=repo, compile="container")
    graph = plan.ok("graph", "-f", proj, "--json")
    assert [n["id"] for n in graph["nodes"]] == ["image"], graph  # no host compile nodes
    text = plan.ok("dockerfile", "-f", proj)
    assert "FROM --platform=$BUILDPLATFORM crossplan/toolchain-go:1.27.3 AS build-hello-go" in text
    assert "FROM --platform=$BUILDPLATFORM crossplan/toolchain-zig:0.17.1 AS build-hello-c" in text
    t0 = time.monotonic()
    res = plan.ok("run", proj, "--push", "--json")
    cold = time.monotonic() - t0
    image = res["images"][0]
    check_pushed(repo, image)
    run_both(f"{REGISTRY}/{repo}:1.0")
    # Drop the whole local build cache, then build from a fresh store: buildx must import
    # the registry cache written by the push and report the compile steps as CACHED.
    sh("docker", "buildx", "prune", "-af")
    fresh = make_plan_runner(tmp_path, "cache2")
    t0 = time.monotonic()
    res2 = fresh.ok("run", proj, "--push", "--json")
    after_prune = time.monotonic() - t0
    assert res2["images"][0]["index_digest"] == image["index_digest"]  # reproducible
    log = fresh.log("image.log")
    assert f"importing cache manifest from {REGISTRY}/{repo}-cache" in log
    ops, cached = cached_steps(log)
    runs = [o for o in ops if f"#{o} [" in log and "RUN" in log.split(f"#{o} [", 1)[1][:200]]
    assert runs and set(runs) <= set(cached), (ops, cached)
    print(f"\n[figures] compile = container, cold: {cold:.1f}s; after `docker buildx prune "
          f"-af` with the registry cache: {after_prune:.1f}s ({len(cached)}/{len(ops)} "
          "RUN/COPY steps CACHED)")


@pytest.mark.parametrize("compile", ["host", "container"])
def test_ejected_dockerfile_builds_with_plain_buildx(plan: Plan, tmp_path: Path,
                                                     compile: str) -> None:
    proj = example(tmp_path / "proj", repo=unique("eject"), compile=compile)
    ctx = tmp_path / "ctx"
    plan.ok("dockerfile", "-f", proj, "--context", ctx)
    assert (ctx / "Dockerfile").is_file()
    out = tmp_path / "hand.tar"
    sh("docker", "buildx", "build", "--platform", "linux/amd64,linux/arm64",
       "--provenance=false", "--output", f"type=oci,dest={out}", str(ctx), timeout=1800)
    assert out.stat().st_size > 0
    tag = f"crossplan-it/{unique('hand')}:1"
    sh("docker", "buildx", "build", "--platform", "linux/arm64", "--load", "-t", tag, str(ctx))
    assert sh("docker", "run", "--rm", "--platform", "linux/arm64", tag).stdout == EXPECTED[
        "linux/arm64"]
    sh("docker", "image", "rm", "-f", tag, check=False)
    assert BASE_IMAGE in (ctx / "Dockerfile").read_text()
