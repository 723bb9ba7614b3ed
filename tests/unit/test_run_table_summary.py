"""`plan run`'s result table: every node of a small run; above TABLE_ROWS nodes only those
not served from the store, and a line saying how many were left out (rendering thousands
of cached rows cost more than the no-op itself)."""

from __future__ import annotations

from crossplan.cli import run as run_cli
from crossplan.cli.common import out
from crossplan.executors.result import RunResult, StepResult
from crossplan.planner.graph import NodeId


def _result(cached: int, built: int) -> RunResult:
    steps = [StepResult(NodeId(f"c{i}", "any"), "cached", f"{i:064x}", 0.0)
             for i in range(cached)]
    steps += [StepResult(NodeId(f"b{i}", "linux/amd64"), "built", f"{i + cached:064x}", 1.0)
              for i in range(built)]
    return RunResult(tuple(steps), (), (), 2.5)


def _printed(result: RunResult) -> str:
    with out.capture() as captured:
        run_cli._print_result(result)
    return captured.get()


def test_small_run_lists_every_node() -> None:
    text = _printed(_result(cached=run_cli.TABLE_ROWS - 1, built=1))
    assert all(f" c{i} " in text for i in range(run_cli.TABLE_ROWS - 1))
    assert "not listed" not in text
    assert text.rstrip().endswith(f"1 built, {run_cli.TABLE_ROWS - 1} cached in 2.50s")


def test_big_run_lists_what_was_built_and_counts_the_rest() -> None:
    text = _printed(_result(cached=2000, built=3))
    assert [f" b{i} " in text for i in range(3)] == [True] * 3
    assert " c0 " not in text and " c1999 " not in text
    assert "(2000 more not listed; --json lists every node)" in text
    assert text.rstrip().endswith("3 built, 2000 cached in 2.50s")


def test_big_cached_run_prints_no_empty_table() -> None:
    text = _printed(_result(cached=run_cli.TABLE_ROWS + 1, built=0))
    assert "step" not in text  # no header of an empty table
    assert text.splitlines() == [f"({run_cli.TABLE_ROWS + 1} more not listed; --json lists "
                                 "every node)", f"{run_cli.TABLE_ROWS + 1} cached in 2.50s"]


def test_many_built_nodes_are_capped_too() -> None:
    rows, hidden = run_cli._rows(_result(cached=10, built=run_cli.TABLE_ROWS + 5))
    assert len(rows) == run_cli.TABLE_ROWS and {r.status for r in rows} == {"built"}
    assert hidden == 15
