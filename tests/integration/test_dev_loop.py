"""The dev loop against real components.

``plan load``: a two-platform image made entirely in the test (a base step copying the CI's
static busybox for each arch with a ``/bin/sh`` link, and a ``#!/bin/sh`` script printing
the arch baked in) is built by each backend, each platform is loaded into the engine, and
``docker run --platform`` prints the script's line (arm64 under QEMU); errors: the daemon
unreachable (exit 3), an unknown step or a platform the step does not build (exit 2).

``plan run --watch``: a subprocess on a two-platform shell recipe; after the first build an
input is edited, the rebuilt outputs appear under ``--export``, SIGINT stops it (exit 130).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from buildx_env import CI_PREFIX, Plan, make_plan_runner, require_engine, sh, unique

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

RECIPE = """\
[project]
name = "devloop"
platforms = ["linux/amd64", "linux/arm64"]

[steps.base]
kind = "shell"
src = "bb/"
command = ["sh", "-c", '''
set -e
mkdir bin && cp $TARGETARCH/busybox bin/busybox
chmod 755 bin/busybox && ln -s busybox bin/sh
''']
outputs = ["bin"]

[steps.app]
kind = "shell"
src = "app/"
command = ["sh", "-c", '''
set -e
printf '#!/bin/sh\\necho %s %s\\n' "$(cat greeting.txt)" "$TARGETARCH" > hello
chmod 755 hello
''']
outputs = ["hello"]

[steps.image]
kind = "image"
base = "scratch"
copy = [{ from = "base", src = "bin", dest = "/bin/" }, { from = "app", dest = "/usr/local/bin/" }]
cmd = ["/usr/local/bin/hello"]
backend = "BACKEND"

[buildx]
compile = "host"
"""


def make_project(root: Path, backend: str, greeting: str) -> Path:
    for arch in ("amd64", "arm64"):
        (root / "bb" / arch).mkdir(parents=True)
        shutil.copy(CI_PREFIX / "busybox" / arch / "busybox", root / "bb" / arch / "busybox")
    (root / "app").mkdir()
    (root / "app" / "greeting.txt").write_text(f"{greeting}\n")
    (root / "plan.toml").write_text(RECIPE.replace("BACKEND", backend))
    return root


@pytest.fixture
def runner(tmp_path: Path) -> Plan:
    require_engine()
    return make_plan_runner(tmp_path)


@pytest.fixture
def names() -> Iterator[list[str]]:
    """Image names a test loads, removed from the engine afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        sh("docker", "image", "rm", "-f", name, check=False)


@pytest.mark.parametrize("backend", ["oci", "buildx"])
def test_load_each_platform_then_docker_run(
    backend: str, tmp_path: Path, runner: Plan, names: list[str]
) -> None:
    greeting = unique(backend)  # a salt: nothing cached from another test
    proj = make_project(tmp_path / "proj", backend, greeting)
    tag = f"crossplan-it/{greeting}:dev"
    names.append(tag)
    for platform, arch in (("linux/arm64", "arm64"), ("linux/amd64", "amd64")):
        got = runner.ok("load", proj, "image", "--platform", platform, "--tag", tag, "--json")
        assert got["ok"] and got["platform"] == platform and got["backend"] == backend
        assert got["ref"] == tag and got["name"] == f"docker.io/{tag}"
        assert got["manifest"].startswith("sha256:") and got["image_id"]
        statuses = {s["status"] for s in got["run"]["steps"]}
        assert statuses == ({"built"} if arch == "arm64" else {"cached"})  # one build
        out = sh("docker", "run", "--rm", "--platform", platform, tag).stdout
        assert out == f"{greeting} {arch}\n"
    # The host's platform by default, named after the step; text output names the command.
    default = "crossplan/devloop-image:dev"
    names.append(default)
    text = runner.ok("load", "-f", proj)
    assert f"loaded {default} (linux/" in text and "from the store" in text
    host_arch = "arm64" if os.uname().machine in ("aarch64", "arm64") else "amd64"
    assert sh("docker", "run", "--rm", default).stdout == f"{greeting} {host_arch}\n"


def test_load_errors(tmp_path: Path, runner: Plan) -> None:
    proj = make_project(tmp_path / "proj", "oci", unique("err"))
    gone = runner("load", proj, "image", "--json",
                  env={"DOCKER_HOST": f"unix://{tmp_path}/missing.sock"})
    assert gone.returncode == 3, gone.stderr
    assert "Docker daemon" in gone.stderr and "unreachable" in gone.stderr
    assert json.loads(gone.stdout)["exit_code"] == 3
    assert "Traceback" not in gone.stderr
    for args, needle in (
        (["imag"], "unknown step 'imag'"),
        (["app"], "not an image step: 'app'"),
        (["image", "--platform", "linux/riscv64"], "does not build linux/riscv64"),
        (["image", "--tag", "Not A Tag"], "is not an image reference"),
    ):
        proc = runner("load", proj, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert needle in proc.stderr and "Traceback" not in proc.stderr
        assert "plan.toml" in proc.stderr or "--tag" in args


WATCH_RECIPE = """\
[project]
name = "watched"
platforms = ["linux/amd64", "linux/arm64"]

[steps.gen]
kind = "shell"
src = "src/"
command = ["sh", "-c", "echo \\"$TARGETARCH $(cat a.txt)\\" > out.txt"]
outputs = ["out.txt"]
"""


def _wait_for(paths: dict[Path, str], proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(p.is_file() and p.read_text() == want for p, want in paths.items()):
            return
        assert proc.poll() is None, f"plan exited {proc.returncode}"
        time.sleep(0.1)
    have = {str(p): p.read_text() if p.is_file() else None for p in paths}
    pytest.fail(f"outputs never became {list(paths.values())}: {have}")


def test_run_watch_rebuilds_on_save_and_stops_on_sigint(tmp_path: Path, runner: Plan) -> None:
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "src" / "a.txt").write_text("one\n")
    (proj / "plan.toml").write_text(WATCH_RECIPE)
    export = tmp_path / "export"
    outputs = {arch: export / "gen" / f"linux_{arch}" / "out.txt" for arch in ("amd64", "arm64")}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "crossplan.cli", "run", str(proj), "--watch", "--export",
         str(export)], env={**runner.env}, cwd=tmp_path, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        _wait_for({p: f"{arch} one\n" for arch, p in outputs.items()}, proc)
        time.sleep(0.5)  # the watcher starts after the first build
        (proj / "src" / "a.txt").write_text("two\n")
        _wait_for({p: f"{arch} two\n" for arch, p in outputs.items()}, proc)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    lines = stdout.splitlines()
    assert lines[0].startswith("#0 first build: 2 built"), stdout
    assert lines[1].startswith("#1 src/a.txt changed: 2 built"), stdout
    assert "linux/" in lines[1] and "first:" in lines[1]
    assert time.monotonic() - started < 120
