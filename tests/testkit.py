"""Helpers shared by the tests (imported as ``testkit``; pytest puts tests/ on sys.path):
paths, the `plan` CLI result type, project factories, store snapshots. Fixtures that use
them live in tests/conftest.py."""

from __future__ import annotations

import json
import re
import sys
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossplan.cache.store import Store

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

# Host variables that would change keys or where the store lives: never inherited by tests.
SCRUBBED = (
    "CROSSPLAN_CACHE_DIR", "XDG_CACHE_HOME", "SOURCE_DATE_EPOCH", "GOPROXY", "GOPRIVATE",
    "GONOSUMDB", "GONOPROXY", "GOSUMDB", "GOINSECURE", "RUSTFLAGS", "CARGO_NET_OFFLINE",
    # set in this process when a test imports crossplan.executors.reapi: `plan` processes
    # start as a user's do (a run that sets it must still find its no-op memo next time)
    "GRPC_VERBOSITY", "GRPC_ENABLE_FORK_SUPPORT",
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


def plan_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "crossplan.cli", *args]


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


ProjectFactory = Callable[..., Path]


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



def plan_of(
    recipe: Any, platforms: Any = None, *, environ: Mapping[str, str] | None = None,
    memo: Any = None,
) -> Any:
    """A Plan without toolchains or bases probed: input trees only (``environ`` default {})."""
    from crossplan.planner.plan import make_plan
    from crossplan.probe import gather

    facts = gather(recipe, platforms, environ={} if environ is None else environ, memo=memo)
    return make_plan(recipe, platforms, facts)


def require_component(ok: bool, reason: str) -> None:
    """A test needs a component (a tool, root, a service): in CI (CROSSPLAN_REQUIRE_ALL=1)
    its absence fails the test, since CI must install it; elsewhere it skips."""
    import os

    import pytest

    if ok:
        return
    if os.environ.get("CROSSPLAN_REQUIRE_ALL"):
        pytest.fail(f"{reason} (CI installs it: scripts/ci-env.sh install)")
    pytest.skip(reason)


def processes(needle: str) -> list[int]:
    """Pids whose command line contains ``needle`` (a scan of /proc; pytest's own excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline and "pytest" not in cmdline:
            found.append(int(entry.name))
    return found


def wait_until(pred: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``pred`` every 0.1 s until it is true; fail naming ``what`` after ``timeout``."""
    import pytest

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")
