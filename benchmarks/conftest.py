"""Benchmarks are ``bench_*.py`` files; ``--benchmark-disable`` runs them once, small, as smoke
tests. Derived figures (ratios) are printed in the terminal summary."""

from __future__ import annotations

from pathlib import Path

import pytest

_FIGURES: dict[str, str] = {}


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if (
        file_path.suffix == ".py"
        and file_path.name.startswith("bench_")
        and not parent.session.isinitpath(file_path)  # explicit paths are collected anyway
    ):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session")
def full_size(pytestconfig: pytest.Config) -> bool:
    """True for a real measurement, False for a quick smoke run (--benchmark-disable)."""
    return not pytestconfig.getoption("benchmark_disable")


@pytest.fixture(scope="session")
def figures() -> dict[str, str]:
    """``figures[name] = text``: derived numbers shown at the end of the run."""
    return _FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("crossplan benchmark figures")
        for name, text in _FIGURES.items():
            terminalreporter.write_line(f"{name}: {text}")
