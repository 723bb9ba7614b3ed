"""`plan bench --repeat 1` for real, on the smallest step: a one-file C program for
linux/arm64, cross-compiled by the host's aarch64-linux-gnu-gcc and compiled by gcc inside a
Debian arm64 image under QEMU (buildx). Checks the JSON shape, the CSV and the chart, never
the timings (so the command can't rot without CI noticing)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from buildx_env import REPO, require_engine

pytestmark = pytest.mark.integration

IMAGE = "crossplan-bench/debian:bookworm-arm64"
PLAN = f"""\
[project]
name = "bench-smoke"
platforms = ["linux/arm64"]

[steps.tiny-c]
kind = "c"
src = "c/"
build = ["$CC $CFLAGS $LDFLAGS -o tiny tiny.c"]
outputs = ["tiny"]
compiler = "gcc"
libc = "gnu"
toolchain_image = "{IMAGE}"
"""


@pytest.fixture(scope="module")
def debian_arm64() -> str:
    """The Debian arm64 build image (scripts/bench-debian-image.sh: once per machine)."""
    require_engine()
    proc = subprocess.run(["bash", str(REPO / "scripts" / "bench-debian-image.sh"), "arm64"],
                          capture_output=True, text=True, timeout=1200, check=False)
    assert proc.returncode == 0, f"bench-debian-image.sh failed:\n{proc.stdout}\n{proc.stderr}"
    return IMAGE


def test_plan_bench_smoke(tmp_path: Path, debian_arm64: str) -> None:
    proj = tmp_path / "proj"
    (proj / "c").mkdir(parents=True)
    (proj / "plan.toml").write_text(PLAN)
    (proj / "c" / "tiny.c").write_text(
        '#include <stdio.h>\nint main(void) { puts("tiny"); return 0; }\n')
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME",)}
    env.update(CROSSPLAN_CACHE_DIR=str(tmp_path / "store"), COLUMNS="200")
    chart, table = tmp_path / "bench.svg", tmp_path / "bench.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "crossplan.cli", "bench", str(proj), "--platform", "linux/arm64",
         "--modes", "cross,emulated", "--repeat", "1", "--json", "--chart", str(chart),
         "--csv", str(table)],
        capture_output=True, text=True, timeout=900, check=False, env=env,
    )
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    data = json.loads(proc.stdout)
    assert data["ok"] is True and data["repeat"] == 1 and data["skipped"] == []
    assert data["modes"] == ["cross", "emulated"]
    (group,) = data["results"]
    assert group["step"] == "tiny-c" and group["platform"] == "linux/arm64"
    assert set(group["modes"]) == {"cross", "emulated"}
    for mode in ("cross", "emulated"):
        stat = group["modes"][mode]
        assert stat["n"] == 1 and stat["failures"] == 0 and stat["median"] > 0
        assert stat["built_for"] == "linux/arm64"
    assert group["modes"]["emulated"]["compile_median"] > 0  # read from buildx's progress
    assert group["modes"]["emulated"]["toolchain"] == IMAGE
    assert group["ratios"]["emulated/cross"] > 0
    assert sorted(s["mode"] for s in data["samples"]) == ["cross", "emulated"]
    assert all(s["ok"] and s["seconds"] > 0 for s in data["samples"])
    assert any(p["mode"] == "emulated" for p in data["prep"])
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert [r["mode"] for r in rows] == ["cross", "emulated"]
    svg = chart.read_text()
    assert "<svg" in svg and "seconds" in svg and "emulated (buildx, QEMU)" in svg
