"""`plan bench` through the CLI process: usage errors exit 2; `--from-json` re-renders a
saved report (table, CSV, chart) without building, and refuses files that are not one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench_kit import report
from testkit import Cli

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FULL = REPO / "examples" / "hello" / "full.toml"


@pytest.mark.parametrize("args", [
    ["--modes", "cross,qemu"], ["--toolchain-cache", "tepid"], ["--toolchain-image", "x"],
    ["--repeat", "0"],
])
def test_cli_usage_errors_exit_2(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "crossplan.cli", "bench", str(FULL), *args],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr


def test_cli_from_json_rerenders_without_building(tmp_path: Path, cli: Cli) -> None:
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(report().as_json()))
    out_csv, chart = tmp_path / "run.csv", tmp_path / "charts" / "run.svg"
    res = cli("bench", "--from-json", saved, "--csv", out_csv, "--chart", chart, "--json")
    # re-rendering succeeds (exit 0) even though the saved run had a failed sample
    assert res.code == 0, res.stderr
    assert res.json() == report().as_json()
    assert out_csv.read_text() == report().csv_text()
    assert "emulated / cross = 8.2x" in chart.read_text()
    table = cli("bench", "--from-json", saved)
    assert "8.18x" in table.stdout and "failed: emulated c linux/arm64: boom" in table.stderr


@pytest.mark.parametrize(("text", "why"), [
    (None, "cannot read"), ("{not json", "run.json:1: not JSON"),
    ('{"project": "x"}', "not a `plan bench --json` report"), ("[1]", "not a `plan bench"),
])
def test_cli_from_json_bad_file(tmp_path: Path, cli: Cli, text: str | None, why: str) -> None:
    saved = tmp_path / "run.json"
    if text is not None:
        saved.write_text(text)
    res = cli("bench", "--from-json", saved, "--chart", tmp_path / "c.svg")
    assert res.code == 2 and why in res.stderr and str(saved) in res.stderr
    assert not (tmp_path / "c.svg").exists()
