"""The no-op memo (cli/noop.py): a `plan run` that found everything cached is replayed by the
next identical one without planning, and anything the run depended on that changes (an
input edited, added or chmod-ed, the plan edited, a store entry gone) is a miss that plans
and rebuilds as before. Files changed within 2 s of a run are never memoised (racy rule).

A replay is told from a run by stderr: a run prints its "planning" progress line there
(--progress plain), a replay prints nothing but the memoised result."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from testkit import Cli, CliResult, plan_argv, require_component

from crossplan.probe.sandbox import sandbox_problem

pytestmark = pytest.mark.integration

# --progress plain: a run prints its "planning" line on stderr; a replay prints only stdout.
JSON = ("--json", "--progress", "plain")
NODES = {"gen", "count", "report"}
PLAN = """\
[project]
name = "memo"
platforms = ["linux/amd64"]

[steps.gen]
kind = "shell"
src = "gen/"
command = ["sh", "-c", "cat a.txt b.txt > greeting.txt"]
outputs = ["greeting.txt"]
platform_independent = true

[steps.count]
kind = "shell"
src = "words/"
command = ["sh", "-c", "wc -l < list.txt | tr -d ' ' > count.txt"]
outputs = ["count.txt"]
platform_independent = true

[steps.report]
kind = "shell"
src = "."
exclude = ["gen/", "words/", "plan.toml"]
deps = ["gen", "count"]
command = ["sh", "-c", "cat deps/gen/greeting.txt deps/count/count.txt > report.txt"]
outputs = ["report.txt"]
platform_independent = true
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    for rel, text in {"plan.toml": PLAN, "gen/a.txt": "hello\n", "gen/b.txt": "world\n",
                      "words/list.txt": "a\nb\n"}.items():
        (proj / rel).parent.mkdir(parents=True, exist_ok=True)
        (proj / rel).write_text(text)
    return proj


def backdate(*roots: Path, seconds: float = 60) -> None:
    """Every file and directory under ``roots`` last modified ``seconds`` ago (as if the
    build had been a while back: nothing is racy any more)."""
    old = time.time() - seconds
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*dirnames, *filenames]:
                os.utime(os.path.join(dirpath, name), (old, old), follow_symlinks=False)
        os.utime(root, (old, old))


def ci_toolcache(name: str, tmp_path: Path) -> Path:
    """A toolchain's caches kept across runs on the machine (as CI keeps its toolcache: a
    cold one compiles Go's std, zig's libc), else one of the test's."""
    shared = Path(os.environ.get("CROSSPLAN_CI_CACHE", "/var/cache/crossplan-ci")) / name
    try:
        shared.mkdir(parents=True, exist_ok=True)
    except OSError:
        return tmp_path / "toolcache"
    return shared


def settle(run: Callable[[], CliResult], statuses: dict[str, str], *roots: Path) -> None:
    """Backdated (nothing racy), run once to write the memo (all ``statuses``), then
    replayed with the same result."""
    backdate(*roots)
    res = run()
    assert not _replayed(res)
    assert res.statuses() == statuses
    again = run()
    assert _replayed(again)
    assert _without_seconds(again.json()) == _without_seconds(res.json())


def _memos(store: Path) -> list[Path]:
    return sorted((store / "noop").glob("*.json")) if (store / "noop").is_dir() else []


def _replayed(res: CliResult, code: int = 0) -> bool:
    assert res.code == code, res.stderr + res.stdout
    return "planning" not in res.stderr


def _without_seconds(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _without_seconds(v) for k, v in doc.items() if k != "seconds"}
    if isinstance(doc, list):
        return [_without_seconds(v) for v in doc]
    return doc


@pytest.fixture
def memoised(cli: Cli, project: Path, cache_dir: Path) -> tuple[Path, Path, CliResult]:
    """The project built, backdated, then run once more (all cached: memo written)."""
    require_component(sandbox_problem() is None, "bubblewrap cannot sandbox here")
    store = cache_dir
    built = cli("run", project, *JSON)
    assert built.code == 0, built.stderr
    assert set(built.statuses().values()) == {"built"}
    assert _memos(store) == []  # built: not a no-op
    backdate(project, store)
    cached = cli("run", project, *JSON)
    assert not _replayed(cached)
    assert cached.statuses() == dict.fromkeys(NODES, "cached")
    assert len(_memos(store)) == 1
    return project, store, cached


def test_replay_prints_what_the_run_printed(
    cli: Cli, memoised: tuple[Path, Path, CliResult]
) -> None:
    project, _, cached = memoised
    again = cli("run", project, *JSON)
    assert _replayed(again)
    assert _without_seconds(again.json()) == _without_seconds(cached.json())
    # A different argv is a different memo: the table is memoised by its own first run.
    table = cli("run", project, "--progress", "plain")
    assert not _replayed(table) and "3 cached in " in table.stdout
    table_again = cli("run", project, "--progress", "plain")
    assert _replayed(table_again)
    assert table_again.stdout.splitlines()[:-1] == table.stdout.splitlines()[:-1]
    assert table_again.stdout.splitlines()[-1].startswith("3 cached in ")
    # Turned off: the run plans.
    assert not _replayed(cli("run", project, *JSON, env={"CROSSPLAN_NOOP_MEMO": "off"}))


def test_a_changed_input_is_a_miss_and_rebuilds(
    cli: Cli, memoised: tuple[Path, Path, CliResult]
) -> None:
    """Each change in turn (the memo written again in between): the run plans and the
    changed step runs again."""
    project, store, _ = memoised
    words = project / "words" / "list.txt"
    changes = {
        "edit": lambda: words.write_text(words.read_text() + "more\n"),
        "new file": lambda: (project / "words" / "extra.txt").write_text("x\n"),
        "chmod": lambda: words.chmod(0o755),
        "plan": lambda: (project / "plan.toml").write_text(
            PLAN.replace("tr -d ' '", "tr -d ' \\t'")),
        "remove": lambda: (project / "gen" / "b.txt").unlink(),
    }
    for change, do in changes.items():
        do()
        res = cli("run", project, *JSON)
        assert not _replayed(res, code=1 if change == "remove" else 0), change
        statuses = res.statuses()
        if change == "remove":  # the step runs again, and now fails: cat: b.txt: No such file
            assert statuses["gen"] == "failed", statuses
            continue
        assert statuses["count"] == "built", (change, statuses)
        backdate(project, store)
        assert not _replayed(cli("run", project, *JSON)), change  # all cached: memoised
        assert _replayed(cli("run", project, *JSON)), change


def test_a_store_entry_or_blob_gone_is_a_miss(
    cli: Cli, memoised: tuple[Path, Path, CliResult]
) -> None:
    project, store, cached = memoised
    key = cached.steps()["count"]["key"]
    with sqlite3.connect(store / "index" / "cache.db") as con:  # as `plan cache gc` would
        con.execute("DELETE FROM Cache WHERE key = ?", (key,))
    res = cli("run", project, *JSON)
    assert not _replayed(res)
    assert res.statuses()["count"] == "built"

    backdate(project, store)
    assert not _replayed(cli("run", project, *JSON))  # memoised again
    digest = cached.steps()["gen"]["outputs"]["greeting.txt"]
    blob = store / "blobs" / digest[:2] / digest
    blob.chmod(0o644)
    blob.unlink()
    res = cli("run", project, *JSON)
    assert not _replayed(res)
    assert res.statuses()["gen"] == "built"


def test_nothing_recent_is_memoised(cli: Cli, project: Path, cache_dir: Path) -> None:
    """Racy rule: an input modified within 2 s of the run's start gives no memo (it could
    change again within the same mtime tick); a later run memoises it."""
    require_component(sandbox_problem() is None, "bubblewrap cannot sandbox here")
    store = cache_dir
    assert cli("run", project, *JSON).code == 0
    backdate(project, store)
    (project / "gen" / "a.txt").touch()  # same bytes, modified now: racy
    res = cli("run", project, *JSON)
    assert not _replayed(res) and res.statuses() == dict.fromkeys(NODES, "cached")
    assert _memos(store) == []
    assert not _replayed(cli("run", project, *JSON))


def _on_terminal(project: Path, env: dict[str, str]) -> tuple[str, str]:
    """``plan run PROJECT`` with stdout on a pseudo-terminal (colours): (stdout, stderr)."""
    master, slave = os.openpty()
    try:
        proc = subprocess.run(plan_argv("run", str(project), "--progress", "plain"),
                              stdout=slave, stderr=subprocess.PIPE, env=env, cwd=project,
                              timeout=120, check=False)
    finally:
        os.close(slave)
    chunks = []
    try:
        while data := os.read(master, 65536):
            chunks.append(data)
    except OSError:  # EIO: the terminal's other side is closed and drained
        pass
    finally:
        os.close(master)
    assert proc.returncode == 0, proc.stderr
    return b"".join(chunks).decode(), proc.stderr.decode()


def test_replay_on_a_terminal(
    memoised: tuple[Path, Path, CliResult], cli_env: dict[str, str]
) -> None:
    """A terminal's coloured table is memoised too; the summary line is replayed plain."""
    project, _, _ = memoised
    shown, progress = _on_terminal(project, cli_env)
    assert "planning" in progress and "\x1b[" in shown  # colours: a terminal
    again, quiet = _on_terminal(project, cli_env)
    assert "planning" not in quiet
    assert again.splitlines()[:-1] == shown.splitlines()[:-1]
    assert again.splitlines()[-1].startswith("3 cached in ")
