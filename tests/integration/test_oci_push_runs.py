"""The daemonless backend's `--push` result runs on a real engine for both platforms."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from testkit import EXAMPLES, Cli

pytestmark = pytest.mark.integration

REGISTRY = "localhost:5000"  # started by scripts/ci-env.sh


def test_pushed_oci_image_runs_on_amd64_and_arm64(cli: Cli, tmp_path: Path) -> None:
    if shutil.which("docker") is None:
        pytest.fail("docker CLI missing: run scripts/ci-env.sh install && start")
    repo = f"{REGISTRY}/crossplan-test/oci-go-{uuid.uuid4().hex[:8]}"
    proj = tmp_path / "proj"
    shutil.copytree(EXAMPLES / "hello" / "go", proj / "go")
    (proj / "plan.toml").write_text(
        '[project]\nname = "oci-push"\nplatforms = ["linux/amd64", "linux/arm64"]\n\n'
        '[steps.hello]\nkind = "go"\nsrc = "go/"\npackage = "./cmd/hello"\n\n'
        '[steps.image]\nkind = "image"\nbackend = "oci"\n'
        'copy = [{ from = "hello", dest = "/usr/local/bin/" }]\n'
        'entrypoint = ["/usr/local/bin/hello"]\n'
        f'tags = ["{repo}:1.0"]\n'
    )
    res = cli("run", proj, "--push", "--json", timeout=900)
    assert res.code == 0, res.stderr
    image = res.json()["images"][0]
    assert image["pushed"] == [f"{repo}:1.0"]
    for platform, arch in (("linux/amd64", "amd64"), ("linux/arm64", "arm64")):
        run = subprocess.run(
            ["docker", "run", "--rm", "--pull", "always", "--platform", platform, f"{repo}:1.0"],
            capture_output=True, text=True, timeout=300, check=False,
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == f"hello from go on {arch}"
