"""The whole examples/monorepo built from Python only (no CLI): typed events for every node,
RunResult artifacts and image digests, binaries that link libgreet and run on each platform,
then a library change rebuilt with ``RunOptions(affected=True)``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from monorepo_env import (
    ALL,
    API_C,
    API_GO,
    LIB,
    PLATFORMS,
    edit,
    missing,
    monorepo_repo,
)

import crossplan
from crossplan.backends.smoke import run_binary
from crossplan.errors import EnvironmentProblem
from crossplan.platforms import build_platform

pytestmark = pytest.mark.integration

IMAGES = ("services/api-c:image", "services/api-go:image", "services/worker-rust:image")
EXPECT = {
    "services/api-c:bin": "api-c: hello from libgreet {v}, api-c\n",
    "services/api-go:bin": "api-go: hello from libgreet {v}, api-go\n",
    "services/worker-rust:bin": "worker-rust: ready on {arch}\n",
}
ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


def build(p: crossplan.Plan, opts: crossplan.RunOptions) -> tuple[
    crossplan.RunResult, list[crossplan.StepEvent]
]:
    events: list[crossplan.StepEvent] = []
    try:
        result = crossplan.run(p, opts, on_event=events.append)
    except EnvironmentProblem as exc:
        missing(str(exc))
        raise
    failed = [s.error for s in result.steps if s.status == "failed"]
    assert result.ok, failed
    return result, events


def by_node(events: list[crossplan.StepEvent]) -> dict[str, list[crossplan.StepEvent]]:
    out: dict[str, list[crossplan.StepEvent]] = {}
    for e in events:
        if e.kind != "warning":
            out.setdefault(str(e.node), []).append(e)
    return out


def check_binaries(export: Path, version: str) -> None:
    for step, want in EXPECT.items():
        for platform in PLATFORMS:
            binary = export / step / platform.replace("/", "_") / step.split(":")[0].split("/")[1]
            target = crossplan.Platform.parse(platform)
            if target != build_platform() and not (
                shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
            ):
                missing("qemu-aarch64-static is not installed")
            code, output = run_binary(binary, target)
            assert (code, output) == (0, want.format(v=version, arch=ARCH[platform]))


def test_the_monorepo_builds_from_python(tmp_path: Path) -> None:
    repo = monorepo_repo(tmp_path / "monorepo")
    cache = tmp_path / "cache"
    try:
        p = crossplan.plan(crossplan.load(repo), cache_dir=cache)
    except EnvironmentProblem as exc:
        missing(str(exc))
        raise
    assert {str(n) for n in p.nodes} == ALL
    ws = crossplan.Workspace.of(p.recipe)
    assert [m.path for m in ws.members] == [
        "libs/greet", "services/api-c", "services/api-go", "services/worker-rust"]

    # 1. Everything, one run: each node starts and finishes, with a duration and a log.
    opts = crossplan.RunOptions(cache_dir=cache, jobs=4, export=tmp_path / "out",
                                output=f"oci:{tmp_path / 'dist'}")
    result, events = build(p, opts)
    seen = by_node(events)
    assert set(seen) == ALL
    for node, evs in seen.items():
        assert [e.kind for e in evs] == ["started", "finished"], node
        done = evs[-1]
        assert done.seconds > 0 and done.key and len(done.key) == 64
        assert done.log is not None and done.log.is_file(), node
    assert {s.status for s in result.steps} == {"built"}
    assert all(s.seconds > 0 for s in result.steps)
    assert result.artifacts[crossplan.NodeId("libs/greet:lib", "linux/arm64")].keys() == {
        "libgreet.a", "greet.h"}
    assert result.step("services/api-go:bin", "linux/amd64").outputs.keys() == {"api-go"}
    digests = {}
    for step in IMAGES:
        image = result.image(step)
        assert image.index_digest.startswith("sha256:")
        assert image.manifests.keys() == set(PLATFORMS)
        assert image.layout is not None
        index = json.loads((image.layout / "index.json").read_text())
        assert index["manifests"][0]["digest"] == image.index_digest
        digests[step] = image.index_digest
    check_binaries(tmp_path / "out", "1.0")

    # 2. Again: every node is a cache hit, the images are the same.
    again, events = build(p, crossplan.RunOptions(cache_dir=cache))
    assert {k: [e.kind for e in v] for k, v in by_node(events).items()} == {
        n: ["cached"] for n in ALL}
    assert {i.step: i.index_digest for i in again.images} == digests

    # 3. The shared library changes: only it and the services linking it rebuild.
    edit(repo / "libs/greet/src/greet.c", '"1.0"', '"1.1"')
    p = crossplan.plan(crossplan.load(repo), cache_dir=cache)
    found = crossplan.affected(p, since="HEAD", cache_dir=cache)
    assert {str(n) for n in found.targets} == LIB | API_C | API_GO
    rebuilt, events = build(p, crossplan.RunOptions(
        cache_dir=cache, affected=True, export=tmp_path / "out2"))
    assert {str(s.node): s.status for s in rebuilt.steps} == {
        n: "built" for n in LIB | API_C | API_GO}
    assert {i.step for i in rebuilt.images} == {"services/api-c:image", "services/api-go:image"}
    assert all(rebuilt.image(s).index_digest != digests[s] for s in IMAGES[:2])
    for step in ("services/api-c:bin", "services/api-go:bin"):
        binary = tmp_path / "out2" / step / "linux_arm64" / step.split(":")[0].split("/")[1]
        code, output = run_binary(binary, crossplan.Platform.parse("linux/arm64"))
        assert code == 0 and "libgreet 1.1" in output
