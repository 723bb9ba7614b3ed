"""The suite's own layout: CI runs `pytest tests benchmarks` in one process, where two test
modules with the same file name shadow each other (rootdir-relative module names)."""

from __future__ import annotations

from collections import Counter

from testkit import REPO


def test_no_two_test_modules_share_a_file_name() -> None:
    names = Counter(
        p.name for d in ("tests", "benchmarks") for p in (REPO / d).rglob("*.py")
        if p.name.startswith(("test_", "bench_")) or p.name == "conftest.py"
    )
    dupes = {n: c for n, c in names.items() if c > 1 and n != "conftest.py"}
    assert not dupes, f"test modules sharing a file name: {dupes}"
