"""The buildx backend's pure parts: capability parsing, strategy and cache choices, argv,
failure classification, binfmt, layout normalization, and compile = "container" plans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from testkit import plan_of

from crossplan.backends.buildx import (
    BuildRequest,
    Capabilities,
    build_argv,
    cache_plan,
    choose_strategy,
    classify_failure,
    merge_layouts,
    normalize_layout,
    parse_inspect,
    read_binfmt,
)
from crossplan.backends.buildx.binfmt import binfmt_fix, can_execute
from crossplan.backends.buildx.caps import BuilderInfo
from crossplan.backends.oci.descriptor import canonical_json, sha256_digest
from crossplan.checks.image_test import expected_output
from crossplan.errors import EnvironmentProblem, RecipeError, StepFailed
from crossplan.planner.container import choose_backend
from crossplan.planner.graph import ANY, NodeId
from crossplan.platforms import Platform, parse_platforms
from crossplan.recipes import from_dict
from crossplan.recipes.models import BuildxConfig, ImageStep

INSPECT = """\
Name:          default
Driver:        docker
Last Activity: 2026-11-26 14:24:58 +0000 UTC

Nodes:
Name:             default
Endpoint:         default
Status:           running
BuildKit version: v0.0.0+unknown
Platforms:        linux/amd64, linux/amd64/v2, linux/amd64/v3, linux/arm64, linux/riscv64
Labels:
 org.mobyproject.buildkit.worker.executor:             containerd
"""
AMD64, ARM64 = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")
S390X = Platform.parse("linux/s390x")


def caps(driver: str = "docker", containerd: bool = True) -> Capabilities:
    return Capabilities("0.13.1", BuilderInfo("b", driver, "running"), containerd, (AMD64, ARM64))


def test_parse_inspect() -> None:
    info = parse_inspect(INSPECT)
    assert (info.name, info.driver, info.status) == ("default", "docker", "running")
    assert info.platforms == parse_platforms("linux/amd64,linux/arm64,linux/riscv64")


@pytest.mark.parametrize(
    ("driver", "containerd", "multi", "oci", "cache", "load_multi", "by_digest"),
    [
        ("docker", True, True, True, True, True, False),
        ("docker", False, False, False, False, False, False),
        ("docker-container", False, True, True, True, False, True),
    ],
)
def test_capabilities(driver: str, containerd: bool, multi: bool, oci: bool, cache: bool,
                      load_multi: bool, by_digest: bool) -> None:
    c = caps(driver, containerd)
    assert (c.multi_platform, c.oci_export, c.cache_export, c.load_multi_platform,
            c.push_by_digest) == (multi, oci, cache, load_multi, by_digest)


@pytest.mark.parametrize(
    ("strategy", "containerd", "n", "expected"),
    [
        ("auto", True, 2, "multi"),
        ("auto", False, 2, "per-platform"),
        ("auto", False, 1, "multi"),
        ("per-platform", True, 2, "per-platform"),
        ("multi", True, 2, "multi"),
    ],
)
def test_choose_strategy(strategy: Any, containerd: bool, n: int, expected: str) -> None:
    plats = (AMD64, ARM64)[:n]
    assert choose_strategy(BuildxConfig(strategy=strategy), caps(containerd=containerd),
                           plats) == expected


def test_forced_multi_on_a_classic_store_is_an_environment_problem() -> None:
    with pytest.raises(EnvironmentProblem, match="one platform at a time"):
        choose_strategy(BuildxConfig(strategy="multi"), caps(containerd=False), (AMD64, ARM64))


REG = BuildxConfig(cache="registry", cache_ref="localhost:5000/demo/cache")


@pytest.mark.parametrize(
    ("config", "containerd", "push", "suffix", "cache_from", "cache_to", "warns"),
    [
        (REG, True, True, "", ("type=registry,ref=localhost:5000/demo/cache",),
         ("type=registry,ref=localhost:5000/demo/cache,mode=max",), False),
        (REG, True, False, "", ("type=registry,ref=localhost:5000/demo/cache",), (), False),
        (REG, True, True, "arm64", ("type=registry,ref=localhost:5000/demo/cache:latest-arm64",),
         ("type=registry,ref=localhost:5000/demo/cache:latest-arm64,mode=max",), False),
        (REG, False, True, "", ("type=registry,ref=localhost:5000/demo/app:1",),
         ("type=inline",), True),
        (BuildxConfig(cache="inline"), True, True, "",
         ("type=registry,ref=localhost:5000/demo/app:1",), ("type=inline",), False),
        (BuildxConfig(cache="none"), True, True, "", (), (), False),
    ],
)
def test_cache_plan(config: BuildxConfig, containerd: bool, push: bool, suffix: str,
                    cache_from: tuple[str, ...], cache_to: tuple[str, ...], warns: bool) -> None:
    plan = cache_plan(config, caps(containerd=containerd), push=push,
                      tags=("localhost:5000/demo/app:1",), suffix=suffix)
    assert (plan.cache_from, plan.cache_to, bool(plan.warnings)) == (cache_from, cache_to, warns)
    if warns:
        assert "falling back to inline" in plan.warnings[0]


def test_local_cache_dir(tmp_path: Path) -> None:
    plan = cache_plan(BuildxConfig(cache="local"), caps(), push=False, tags=(),
                      local_dir=tmp_path / "c")
    assert plan.cache_from == ()
    assert plan.cache_to == (f"type=local,dest={tmp_path / 'c'},mode=max",)


def test_registry_cache_needs_a_ref() -> None:
    with pytest.raises(RecipeError, match="needs cache_ref"):
        cache_plan(BuildxConfig(cache="registry"), caps(), push=True, tags=())


def test_build_argv() -> None:
    req = BuildRequest(
        context=Path("/ctx"), platforms=(AMD64, ARM64), output="type=registry,oci-mediatypes=true",
        metadata_file=Path("/m.json"), tags=("r/a:1", "r/a:latest"),
        cache_from=("type=registry,ref=r/c",), cache_to=("type=registry,ref=r/c,mode=max",),
        build_args={"SOURCE_DATE_EPOCH": "0"},
    )
    assert build_argv(req) == [
        "docker", "buildx", "build", "--progress", "plain", "--provenance=false",
        "--platform", "linux/amd64,linux/arm64", "--build-arg", "SOURCE_DATE_EPOCH=0",
        "--tag", "r/a:1", "--tag", "r/a:latest", "--output", "type=registry,oci-mediatypes=true",
        "--cache-from", "type=registry,ref=r/c", "--cache-to", "type=registry,ref=r/c,mode=max",
        "--metadata-file", "/m.json", "/ctx",
    ]
    load = BuildRequest(context=Path("/c"), platforms=(AMD64,), output="load",
                        metadata_file=Path("/m"), tags=("x:1",))
    assert "--load" in build_argv(load) and "--output" not in build_argv(load)


@pytest.mark.parametrize(
    ("output", "kind", "text"),
    [
        ("docker: unknown command: docker buildx", EnvironmentProblem, "not installed"),
        ("ERROR: Multi-platform build is not supported for the docker driver.",
         EnvironmentProblem, "several platforms"),
        ("#9 [linux/s390x build-a 3/3] RUN go build\n#9 0.1 exec /bin/sh: exec format error",
         EnvironmentProblem, "linux/s390x"),
        ("ERROR: failed to solve: x: no match for platform in manifest sha256:1: not found",
         EnvironmentProblem, "lacks a target platform"),
        ("#5 ERROR: process \"go build\" did not complete successfully: exit code: 1",
         StepFailed, "docker buildx build failed"),
    ],
)
def test_classify_failure(output: str, kind: type[Exception], text: str) -> None:
    exc = classify_failure(output, step="image", log=None)
    assert isinstance(exc, kind) and text in str(exc)


def test_exec_format_error_hint_is_the_binfmt_fix() -> None:
    exc = classify_failure("[linux/arm64 a 1/2] RUN x\nexec format error", step="s", log=None)
    assert "update-binfmts --enable qemu-aarch64" in str(exc)


def test_binfmt(tmp_path: Path) -> None:
    (tmp_path / "qemu-aarch64").write_text(
        "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n")
    (tmp_path / "qemu-riscv64").write_text("disabled\ninterpreter /x\nflags: P\n")
    entries = read_binfmt(tmp_path)
    assert entries["qemu-aarch64"].enabled and entries["qemu-aarch64"].fix_binary
    assert not entries["qemu-riscv64"].enabled
    assert can_execute(ARM64, AMD64, entries)
    assert can_execute(Platform.parse("linux/386"), AMD64, entries)
    assert not can_execute(Platform.parse("linux/riscv64"), AMD64, entries)
    assert can_execute(S390X, AMD64, entries, (S390X,))
    assert "update-binfmts --enable qemu-s390x" in binfmt_fix([S390X])
    assert read_binfmt(tmp_path / "absent") == {}


def _layout(root: Path, platform: dict[str, str]) -> Path:
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(doc: dict[str, Any]) -> tuple[str, int]:
        data = canonical_json(doc)
        d = sha256_digest(data)
        (blobs / d.split(":")[1]).write_bytes(data)
        return d, len(data)

    cfg, cfg_size = put({**platform, "rootfs": {"type": "layers", "diff_ids": []}})
    man, man_size = put({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg,
                   "size": cfg_size},
        "layers": [],
    })
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": man,
         "size": man_size}]}))
    return root


def test_single_manifest_layouts_get_an_index_and_merge(tmp_path: Path) -> None:
    a = _layout(tmp_path / "a", {"os": "linux", "architecture": "amd64"})
    b = _layout(tmp_path / "b", {"os": "linux", "architecture": "arm64", "variant": "v8"})
    digest = normalize_layout(a)
    top = json.loads((a / "index.json").read_text())["manifests"]
    assert top[0]["digest"] == digest and top[0]["mediaType"].endswith("index.v1+json")
    assert normalize_layout(a) == digest  # idempotent
    merged = merge_layouts({AMD64: a, ARM64: b}, tmp_path / "m")
    index = json.loads((tmp_path / "m" / "blobs" / "sha256" / merged.split(":")[1]).read_text())
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux"}]


def _recipe(extra: dict[str, Any] | None = None, *, buildx: bool = True,
            backend: str = "buildx") -> Any:
    steps: dict[str, Any] = {
        "gen": {"kind": "shell", "src": "gen", "command": ["true"], "outputs": ["g"]},
        "hello": {"kind": "go", "src": "go", "deps": ["gen"],
                  "toolchain_image": "crossplan/toolchain-go:1.27.3"},
        "image": {"kind": "image", "backend": backend,
                  "copy": [{"from": "hello", "dest": "/bin/"}, {"from": "gen", "dest": "/g/"}]},
        **(extra or {}),
    }
    data: dict[str, Any] = {"project": {"name": "p"}, "steps": steps}
    if buildx:
        data["buildx"] = {"compile": "container"}
    return data


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for d in ("gen", "go"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "f").write_text(d)
    return tmp_path


def test_container_compile_prunes_host_compile_nodes(project: Path) -> None:
    r = from_dict(_recipe(), file=project / "plan.toml")
    p = plan_of(r)
    assert {str(n) for n in p.nodes} == {"gen@linux/amd64", "gen@linux/arm64", "image"}
    node = p.nodes[NodeId("image", ANY)]
    assert node.action is not None and node.action.backend == "buildx"
    # the compile step's dep stays (its stage reads deps/gen/); the compile nodes are gone
    assert node.deps == (NodeId("gen", "linux/amd64"), NodeId("gen", "linux/arm64"))
    assert set(p.graph.predecessors(node.id)) == set(node.deps)
    assert node.components["container_compile"]["hello"]["inputs"]
    assert node.sources["hello"] is not None


def test_a_compile_step_used_elsewhere_stays(project: Path) -> None:
    extra = {"other": {"kind": "shell", "src": "gen", "deps": ["hello"], "command": ["true"]}}
    p = plan_of(from_dict(_recipe(extra), file=project / "plan.toml"))
    assert any(n.step == "hello" for n in p.nodes)
    assert NodeId("hello", "linux/amd64") not in p.nodes[NodeId("image", ANY)].deps


def test_container_sources_enter_the_image_key(project: Path) -> None:
    r = from_dict(_recipe(), file=project / "plan.toml")
    deps: dict[NodeId, dict[str, str]] = {
        NodeId("gen", p): {} for p in ("linux/amd64", "linux/arm64")}
    before = plan_of(r).nodes[NodeId("image", ANY)].key(deps)
    (project / "go" / "f").write_text("changed")
    after = plan_of(r).nodes[NodeId("image", ANY)].key(deps)
    assert before != after


def test_auto_backend_rule_reads_the_recipe_only(project: Path) -> None:
    # The rule never asks the Docker daemon: a plan is the same with or without one.
    r = from_dict(_recipe(buildx=False, backend="auto"), file=project / "plan.toml")
    img = r.steps["image"]
    assert isinstance(img, ImageStep)
    assert choose_backend(r, img) == "oci"  # no [buildx] table: daemonless, no Docker needed
    r = from_dict(_recipe(backend="auto"), file=project / "plan.toml")
    img = r.steps["image"]
    assert isinstance(img, ImageStep)
    assert choose_backend(r, img) == "buildx"  # a [buildx] table: buildx, daemon or not
    assert plan_of(r).nodes[NodeId("image", ANY)].action.backend == "buildx"
    r = from_dict(_recipe(backend="oci"), file=project / "plan.toml")
    img = r.steps["image"]
    assert isinstance(img, ImageStep)
    assert choose_backend(r, img) == "oci"
    assert plan_of(r).nodes.keys() == plan_of(r).nodes.keys()


def test_smoke_expect_placeholders() -> None:
    step = ImageStep.model_validate({"kind": "image", "smoke_expect": "{arch}{variant} {machine}"})
    assert expected_output(step, Platform.parse("linux/arm/v7")) == "armv7 armv7l"
    assert expected_output(step, ARM64) == "arm64 aarch64"
