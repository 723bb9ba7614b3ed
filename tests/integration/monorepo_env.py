"""Helpers for the monorepo tests: a git repository holding a copy of examples/monorepo,
and the skip-or-fail policy for missing toolchains. (The toolchains' caches, zig's libc
builds for cgo among them, are shared between test stores by the root conftest.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from testkit import require_component

REPO = Path(__file__).resolve().parents[2]
MONOREPO = REPO / "examples" / "monorepo"
REQUIRE_ALL = os.environ.get("CROSSPLAN_REQUIRE_ALL") == "1"

PLATFORMS = ("linux/amd64", "linux/arm64")
LIB = {f"libs/greet:lib@{p}" for p in PLATFORMS}
API_C = {f"services/api-c:bin@{p}" for p in PLATFORMS} | {"services/api-c:image"}
API_GO = {f"services/api-go:bin@{p}" for p in PLATFORMS} | {"services/api-go:image"}
WORKER = {f"services/worker-rust:bin@{p}" for p in PLATFORMS} | {"services/worker-rust:image"}
ALL = LIB | API_C | API_GO | WORKER


def missing(reason: str) -> None:
    """Skip for a missing component, except in CI (CROSSPLAN_REQUIRE_ALL=1), where it fails."""
    require_component(False, reason)


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com",
         "-c", "commit.gpgsign=false", *args],
        capture_output=True, text=True, check=True,
    )
    return done.stdout


def monorepo_repo(dest: Path) -> Path:
    """examples/monorepo copied to ``dest`` and committed as a fresh git repository."""
    shutil.copytree(MONOREPO, dest)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "monorepo")
    return dest


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))
