"""Shared setup of the supply-chain tests: the cosign/oras binaries (scripts/
supply-chain-tools.sh installs them), a real `cosign generate-key-pair`, a Go project
with a local module dependency, and a `plan` runner with a store and toolcache."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testkit import REPO, SCRUBBED, plan_argv, require_component

SUPPLY_BIN = Path(os.environ.get("CROSSPLAN_SUPPLY_BIN", "/opt/crossplan-ci/supply/bin"))
REGISTRY = "127.0.0.1:5000"
PASSWORD = "crossplan-test"
# Toolchains' own caches (speed only, never in keys): shared by these tests across runs.
TOOLCACHE = Path("/var/cache/crossplan-ci/toolcache-attest")

GO_MOD = """module example.com/app

go 1.22

require example.com/greet v0.1.0

replace example.com/greet => ./greet
"""
MAIN_GO = """package main

import (
\t"fmt"

\t"example.com/greet"
)

func main() { fmt.Println(greet.Hello()) }
"""
GREET_GO = 'package greet\n\nfunc Hello() string { return "hello from greet" }\n'


def tool(name: str) -> Path:
    path = SUPPLY_BIN / name
    require_component(path.is_file(), f"{name} missing at {path}: run "
                      "scripts/supply-chain-tools.sh")
    return path


def run_tool(*argv: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, check=False, env={**os.environ, **(env or {})})


def keypair(where: Path) -> tuple[Path, Path]:
    """cosign's own key pair (encrypted with PASSWORD)."""
    where.mkdir(parents=True, exist_ok=True)
    res = run_tool(tool("cosign"), "generate-key-pair", env={"COSIGN_PASSWORD": PASSWORD},
                   cwd=where, timeout=60) if not (where / "cosign.key").exists() else None
    if res is not None:
        assert res.returncode == 0, res.stderr
    return where / "cosign.key", where / "cosign.pub"


def go_project(root: Path, toml_tail: str = "", *, tags: str = "") -> Path:
    (root / "go" / "greet").mkdir(parents=True)
    (root / "go" / "go.mod").write_text(GO_MOD)
    (root / "go" / "main.go").write_text(MAIN_GO)
    (root / "go" / "greet" / "go.mod").write_text("module example.com/greet\n\ngo 1.22\n")
    (root / "go" / "greet" / "greet.go").write_text(GREET_GO)
    (root / "plan.toml").write_text(
        '[project]\nname = "attest"\nplatforms = ["linux/amd64", "linux/arm64"]\n\n'
        '[toolchains]\ngo = "1.27.3"\n\n'
        '[steps.app]\nkind = "go"\nsrc = "go/"\nbinary = "app"\n\n'
        '[steps.image]\nkind = "image"\n'
        'copy = [{ from = "app", dest = "/usr/local/bin/" }]\n'
        'entrypoint = ["/usr/local/bin/app"]\n' + (f"tags = [{tags}]\n" if tags else "")
        + toml_tail)
    return root


@dataclass
class Plan:
    """`plan` with its own store; the toolcache is shared (speed only)."""

    cache: Path
    home: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        toolcache = TOOLCACHE if os.access(TOOLCACHE.parent, os.W_OK) else self.home / "tc"
        env.update(CROSSPLAN_CACHE_DIR=str(self.cache), XDG_CACHE_HOME=str(self.home / "xdg"),
                   CROSSPLAN_TOOLCACHE_DIR=str(toolcache), COLUMNS="400",
                   COSIGN_PASSWORD=PASSWORD)
        return env

    def __call__(self, *args: str | Path, cwd: Path | None = None,
                 timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(plan_argv(*(str(a) for a in args)), cwd=cwd or REPO,
                              env=self.env(), capture_output=True, text=True,
                              timeout=timeout, check=False)

    def json(self, *args: str | Path, cwd: Path | None = None) -> Any:
        res = self(*args, "--json", cwd=cwd)
        assert res.returncode == 0, res.stderr + res.stdout
        return json.loads(res.stdout)
