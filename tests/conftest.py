"""Shared fixtures: example projects copied to tmp_path, a `plan` CLI runner, store snapshots."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crossplan.cache.store import Store

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

# Host variables that would change keys or where the store lives: never inherited by tests.
_SCRUBBED = (
    "CROSSPLAN_CACHE_DIR", "XDG_CACHE_HOME", "SOURCE_DATE_EPOCH", "GOPROXY", "GOPRIVATE",
    "GONOSUMDB", "GONOPROXY", "GOSUMDB", "GOINSECURE", "RUSTFLAGS", "CARGO_NET_OFFLINE",
)


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def statuses(self) -> dict[str, str]:
        """``{"step@platform" (or "step" when any): status}`` from a ``run --json`` result."""
        return {_node(s): s["status"] for s in self.json()["steps"]}

    def steps(self) -> dict[str, dict[str, Any]]:
        return {_node(s): s for s in self.json()["steps"]}


def _node(s: Mapping[str, Any]) -> str:
    return s["id"] if s["platform"] == "any" else f"{s['id']}@{s['platform']}"


Cli = Callable[..., CliResult]


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def cli_env(tmp_path: Path, cache_dir: Path) -> dict[str, str]:
    """The environment `plan` processes run with: the store in tmp_path, no key-changing vars."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["CROSSPLAN_CACHE_DIR"] = str(cache_dir)
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    env["COLUMNS"] = "400"  # rich wraps at 80 columns when not on a terminal
    return env


def plan_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "crossplan.cli", *args]


@pytest.fixture
def cli(tmp_path: Path, cli_env: dict[str, str]) -> Cli:
    """``cli("run", str(project), "--json", cwd=..., env={...})`` -> CliResult."""

    def run(
        *args: str | Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
    ) -> CliResult:
        proc = subprocess.run(
            plan_argv(*(str(a) for a in args)), cwd=cwd or tmp_path,
            env={**cli_env, **(env or {})}, capture_output=True, text=True, timeout=timeout,
            check=False,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


def shell_steps_only(toml: str) -> str:
    """Drop the tables of non-shell steps (e.g. an image step added by a later issue), so
    foundation tests see exactly the 3-step shell recipe."""
    data = tomllib.loads(toml)
    drop = {sid for sid, step in data.get("steps", {}).items() if step.get("kind") != "shell"}
    kept: list[str] = []
    keep = True
    for line in toml.splitlines(keepends=True):
        m = re.match(r"\s*\[+\s*steps\.\"?([^\].\"]+)", line)
        if line.lstrip().startswith("["):
            keep = not (m and m.group(1) in drop)
        if keep:
            kept.append(line)
    out = "".join(kept)
    assert set(tomllib.loads(out).get("steps", {})) == set(data["steps"]) - drop
    return out


@pytest.fixture
def shell_project(tmp_path: Path) -> Path:
    """A private copy of examples/shell's shell steps (gen, count -> report@{amd64,arm64})."""
    dest = tmp_path / "proj"
    shutil.copytree(EXAMPLES / "shell", dest)
    toml = dest / "plan.toml"
    toml.write_text(shell_steps_only(toml.read_text()))
    assert set(tomllib.loads(toml.read_text())["steps"]) == {"gen", "count", "report"}
    return dest


ProjectFactory = Callable[..., Path]


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectFactory:
    """``make_project(toml, files={"src/a.txt": "..."}, name="p")`` -> project dir."""

    def make(toml: str, files: Mapping[str, str] | None = None, name: str = "p") -> Path:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        (root / "plan.toml").write_text(textwrap.dedent(toml).lstrip())
        for rel, text in (files or {"src/input.txt": "input\n"}).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        return root

    return make


@dataclass(frozen=True)
class StoreSnapshot:
    keys: tuple[str, ...]
    blobs: tuple[str, ...]
    records: tuple[str, ...]


def store_snapshot(cache_dir: Path) -> StoreSnapshot:
    """What a store holds: index keys, blob files, recorded nodes."""
    if not cache_dir.exists():
        return StoreSnapshot((), (), ())
    blobs = tuple(sorted(p.name for p in (cache_dir / "blobs").glob("*/*")))
    store = Store(cache_dir)
    try:
        records = tuple(sorted(str(k) for k in store.records.iterkeys()))
        return StoreSnapshot(tuple(store.keys()), blobs, records)
    finally:
        store.close()
