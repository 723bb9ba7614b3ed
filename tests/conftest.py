"""Shared fixtures: example projects copied to tmp_path, a `plan` CLI runner, store snapshots.
Plain helpers are in tests/testkit.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
import tomllib
from collections.abc import Mapping
from pathlib import Path

import pytest
from testkit import EXAMPLES, SCRUBBED, Cli, CliResult, ProjectFactory, plan_argv, shell_steps_only
from workspace_kit import Files, MakeWs, write_workspace


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def cli_env(tmp_path: Path, cache_dir: Path) -> dict[str, str]:
    """The environment `plan` processes run with: the store in tmp_path, no key-changing vars."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["CROSSPLAN_CACHE_DIR"] = str(cache_dir)
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    env["COLUMNS"] = "400"  # rich wraps at 80 columns when not on a terminal
    env["CROSSPLAN_DAEMON"] = "0"  # a developer's `plan daemon` serves no test (test_daemon)
    return env


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


@pytest.fixture
def shell_project(tmp_path: Path) -> Path:
    """A private copy of examples/shell's shell steps (gen, count -> report@{amd64,arm64})."""
    dest = tmp_path / "proj"
    shutil.copytree(EXAMPLES / "shell", dest)
    toml = dest / "plan.toml"
    toml.write_text(shell_steps_only(toml.read_text()))
    assert set(tomllib.loads(toml.read_text())["steps"]) == {"gen", "count", "report"}
    return dest


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


@pytest.fixture
def make_ws(tmp_path: Path) -> MakeWs:
    """``make_ws(files=None, **overrides)`` -> the root of tests/workspace_kit.py's workspace."""

    def make(files: Files | None = None, **overrides: str) -> Path:
        return write_workspace(tmp_path / "ws", files, **overrides)

    return make
