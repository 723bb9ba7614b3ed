"""The buildx troubleshooting cases, each for real: a clear message with the fix, exit 3.

buildx missing (the plugin hidden in a private mount namespace), daemon unreachable, QEMU
binfmt missing for an emulated platform, a base image lacking a platform (in the engine and
in the registry), and a multi-platform build without --push on an engine whose classic image
store can neither load nor export it (a second, private dockerd).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from buildx_env import (
    REGISTRY,
    Plan,
    classic_engine,
    docker_run,
    example,
    platforms_of,
    raw,
    registry_tags,
    sh,
    unique,
)

from crossplan.backends.buildx.binfmt import entry_name, read_binfmt
from crossplan.platforms import Platform

pytestmark = [
    pytest.mark.integration, pytest.mark.timeout(1800), pytest.mark.usefixtures("buildx_engine"),
]
PLUGIN_DIR = "/usr/libexec/docker/cli-plugins"


def env_problem(proc: object, *needles: str) -> str:
    code, err = proc.returncode, proc.stderr  # type: ignore[attr-defined]
    assert code == 3, f"exit {code}, expected 3:\n{proc.stdout}\n{err}"  # type: ignore[attr-defined]
    for n in needles:
        assert n in err, f"{n!r} not in:\n{err}"
    return str(err)


def unemulated_platform() -> Platform:
    """A platform this machine has no QEMU binfmt registration for (s390x, ppc64le...)."""
    entries = read_binfmt()
    for name in ("linux/s390x", "linux/ppc64le"):
        p = Platform.parse(name)
        if not (entries.get(entry_name(p)) and entries[entry_name(p)].enabled):
            return p
    pytest.fail("every candidate platform has a binfmt registration; cannot test its absence")


def test_buildx_missing(plan: Plan, tmp_path: Path) -> None:
    proj = example(tmp_path / "proj", repo=unique("nobuildx"))
    # A private mount namespace hides the plugin from this one process tree only.
    script = (f"mount -t tmpfs none {PLUGIN_DIR} && exec {sys.executable} -m crossplan.cli "
              f"run {proj}")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                          text=True, env=dict(plan.env), timeout=600, check=False)
    err = env_problem(proc, "docker buildx is not installed",
                      "/usr/libexec/docker/cli-plugins/docker-buildx")
    assert "hello-go" not in proc.stdout  # failed while planning, before compiling anything
    assert "hint:" in err


def test_daemon_unreachable(plan: Plan, tmp_path: Path) -> None:
    proj = example(tmp_path / "proj", repo=unique("nodaemon"))
    proc = plan("run", proj, "--push", env={"DOCKER_HOST": "unix:///nonexistent"})
    env_problem(proc, "Docker daemon at unix:///nonexistent is unreachable", "DOCKER_HOST",
                'backend = "oci"')
    doc = plan("doctor", "--json", env={"DOCKER_HOST": "unix:///nonexistent"})
    assert doc.returncode == 3
    checks = {c["name"]: c for c in json.loads(doc.stdout)["checks"]}
    assert checks["daemon"]["status"] == "fail" and checks["daemon"]["fix"]


def test_binfmt_missing_for_an_emulated_step(plan: Plan, tmp_path: Path) -> None:
    p = unemulated_platform()
    proj = example(tmp_path / "proj", repo=unique("binfmt"), compile="container", edits={
        'platforms = ["linux/amd64", "linux/arm64"]': f'platforms = ["linux/amd64", "{p}"]',
        'binary = "hello-go"\n': 'binary = "hello-go"\nemulate = true\n',
    })
    proc = plan("run", proj)
    env_problem(proc, f"RUN steps execute on {p}", "binfmt",
                f"update-binfmts --enable qemu-{p.arch}")


def test_plan_test_diagnoses_exec_format_error(plan: Plan, tmp_path: Path) -> None:
    p = unemulated_platform()
    proj = example(tmp_path / "proj", repo=unique("execfmt"), edits={
        'platforms = ["linux/amd64", "linux/arm64"]': f'platforms = ["linux/amd64", "{p}"]',
        'base = "crossplan-ci/busybox:latest"': 'base = "scratch"',
        'cmd = ["sh", "-c", "hello-go && hello-c"]': 'entrypoint = ["/usr/local/bin/hello-go"]',
        'smoke_expect = "hello from go on {arch}\\nhello from c on {arch}"':
            'smoke_expect = "hello from go on {arch}"',
    })
    plan.ok("run", proj)  # copy-only Dockerfile: nothing runs on the target, so it builds
    proc = plan("test", "-f", proj, "--json")
    assert proc.returncode == 3, proc.stderr
    results = {r["platform"]: r for r in json.loads(proc.stdout)["images"][0]["results"]}
    assert results["linux/amd64"]["ok"]
    bad = results[str(p)]
    assert not bad["ok"] and bad["environment_problem"]
    assert "exec format error" in bad["diagnosis"]
    assert f"update-binfmts --enable qemu-{p.arch}" in bad["diagnosis"]


def test_base_image_lacks_a_platform_in_the_engine(plan: Plan, tmp_path: Path) -> None:
    proj = example(tmp_path / "proj", repo=unique("base"), edits={
        'platforms = ["linux/amd64", "linux/arm64"]':
            'platforms = ["linux/amd64", "linux/arm64", "linux/riscv64"]',
    })
    env_problem(plan("run", proj), "base image crossplan-ci/busybox:latest",
                "lacks linux/riscv64", "--platform linux/amd64,linux/arm64,linux/riscv64")


def test_base_image_lacks_a_platform_in_the_registry(plan: Plan, tmp_path: Path) -> None:
    base = f"{REGISTRY}/{unique('base1')}:1"
    ctx = tmp_path / "basectx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY f /f\n")
    (ctx / "f").write_text("x")
    sh("docker", "buildx", "build", "--provenance=false", "--platform", "linux/amd64",
       "--tag", base, "--push", str(ctx))
    sh("docker", "image", "rm", "-f", base, check=False)  # only the registry has it now
    proj = example(tmp_path / "proj", repo=unique("base2"), edits={
        'base = "crossplan-ci/busybox:latest"': f'base = "{base}"'})
    env_problem(plan("run", proj), f"base image {base}", "lacks linux/arm64",
                "(it has linux/amd64)")


@pytest.fixture(scope="module")
def classic() -> Iterator[str]:
    with classic_engine() as host:
        yield host


def test_classic_store_multi_platform_needs_push(plan: Plan, tmp_path: Path,
                                                 classic: str) -> None:
    repo = unique("classic")
    proj = example(tmp_path / "proj", repo=repo, edits={
        'base = "crossplan-ci/busybox:latest"': 'base = "scratch"',
        'cmd = ["sh", "-c", "hello-go && hello-c"]': 'entrypoint = ["/usr/local/bin/hello-go"]',
    })
    env = {"DOCKER_HOST": classic}
    doc = json.loads(plan("doctor", "--json", env=env).stdout)
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["image store"]["status"] == "warn"
    assert "multi-platform builds: no" in checks["builder"]["detail"]
    # No --push: the classic store can neither load nor export a multi-platform result.
    env_problem(plan("run", proj, env=env), "classic image store", "multi-platform",
                "add --push", "imagetools create")
    # One platform is fine without --push (buildx --load, then saved into the store).
    single = plan.ok("run", proj, "--platform", "linux/arm64", "--json", env=env)
    assert list(single["images"][0]["manifests"]) == ["linux/arm64"]
    # With --push: per-platform builds, joined by imagetools create; registry cache falls
    # back to inline cache with a warning (this driver cannot export it).
    res = plan.ok("run", proj, "--push", "--json", env=env)
    notes = res["images"][0]["notes"]
    assert any("imagetools create" in n for n in notes), notes
    assert any("falling back to inline cache" in n for n in notes), notes
    index = raw(f"{REGISTRY}/{repo}:1.0")
    assert platforms_of(index) == {"linux/amd64", "linux/arm64"}
    assert {"1.0", "latest", "1.0-amd64", "1.0-arm64"} <= registry_tags(repo)
    for platform in ("linux/amd64", "linux/arm64"):  # run on the main engine
        assert docker_run(f"{REGISTRY}/{repo}:1.0", platform) == (
            f"hello from go on {platform.split('/')[1]}\n")
