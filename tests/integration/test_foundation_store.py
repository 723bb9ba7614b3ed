"""The store through the CLI: failures never cached, corrupt blobs rebuilt, `plan cache ...`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from testkit import Cli, ProjectFactory, store_snapshot

from crossplan.cache.store import Store

FAILING = """
    [project]
    name = "fail"
    platforms = ["linux/amd64"]
    [steps.ok]
    kind = "shell"
    src = "src"
    command = ["sh", "-c", "cp input.txt ok.txt"]
    outputs = ["ok.txt"]
    [steps.bad]
    kind = "shell"
    src = "src"
    deps = ["ok"]
    command = ["sh", "-c", "for i in $(seq 1 40); do echo noise-$i; done; {DOOM}"]
    outputs = ["never.txt"]
"""


def test_failing_step_shows_log_tail_exits_1_and_is_not_cached(
    cli: Cli, make_project: ProjectFactory, cache_dir: Path
) -> None:
    proj = make_project(FAILING.replace("{DOOM}", "echo marker-of-doom >&2; exit 1"))
    result = cli("run", proj)
    assert result.code == 1
    assert "step 'bad@linux/amd64'" in result.stderr
    assert "command exited with status 1" in result.stderr
    assert "marker-of-doom" in result.stderr
    assert "noise-40" in result.stderr
    assert "noise-1\n" not in result.stderr  # only the tail
    snap = store_snapshot(cache_dir)
    assert len(snap.keys) == 1  # `ok` only

    again = cli("run", proj, "--json")
    assert again.code == 1
    assert again.statuses() == {"ok@linux/amd64": "cached", "bad@linux/amd64": "failed"}
    bad = again.steps()["bad@linux/amd64"]
    assert "marker-of-doom" in bad["error"]
    assert "marker-of-doom" in Path(bad["log"]).read_text()
    assert store_snapshot(cache_dir).keys == snap.keys


def test_exit_0_without_declared_outputs_fails_and_is_not_cached(
    cli: Cli, make_project: ProjectFactory, cache_dir: Path
) -> None:
    proj = make_project("""
        [project]
        name = "lazy"
        platforms = ["linux/amd64"]
        [steps.lazy]
        kind = "shell"
        src = "src"
        command = ["sh", "-c", "mkdir -p dist; echo made > dist/one.txt"]
        outputs = ["dist", "missing.bin"]
    """)
    for _ in range(2):
        result = cli("run", proj, "--json")
        assert result.code == 1
        assert result.statuses() == {"lazy@linux/amd64": "failed"}
        assert "did not produce declared output 'missing.bin'" in result.steps()[
            "lazy@linux/amd64"]["error"]
        assert "missing.bin" in result.stderr
    assert store_snapshot(cache_dir).keys == ()


def test_corrupt_blob_warns_and_rebuilds_that_step(
    cli: Cli, shell_project: Path, cache_dir: Path
) -> None:
    first = cli("run", shell_project, "--json")
    assert first.code == 0
    digest = first.steps()["count"]["outputs"]["count.txt"]
    blob = cache_dir / "blobs" / digest[:2] / digest
    os.chmod(blob, 0o644)
    blob.write_text("666\n")

    result = cli("run", shell_project, "--json")
    assert result.code == 0, result.stderr
    assert "warning" in result.stderr
    assert "count" in result.stderr and "failed verification" in result.stderr
    assert result.statuses() == {
        "gen": "cached", "count": "built",
        "report@linux/amd64": "cached", "report@linux/arm64": "cached",
    }
    assert result.steps()["count"]["outputs"]["count.txt"] == digest
    assert blob.read_text() == "3\n"
    clean = cli("run", shell_project, "--json")
    assert set(clean.statuses().values()) == {"cached"}
    assert "warning" not in clean.stderr


def _entries(cli: Cli) -> list[dict[str, object]]:
    result = cli("cache", "ls", "--json")
    assert result.code == 0, result.stderr
    entries: list[dict[str, object]] = json.loads(result.stdout)
    return entries


def test_cache_ls(cli: Cli, shell_project: Path) -> None:
    assert _entries(cli) == []
    run = cli("run", shell_project, "--json")
    entries = _entries(cli)
    assert sorted((e["node"], e["key"]) for e in entries) == sorted(
        (n, s["key"]) for n, s in run.steps().items()
    )
    gen = next(e for e in entries if e["node"] == "gen")
    assert gen["files"] == 1
    assert gen["bytes"] == len("hello\nworld\n")
    text = cli("cache", "ls")
    assert text.code == 0
    assert len(text.stdout.splitlines()) == 4
    assert "report@linux/arm64" in text.stdout


def test_cache_verify(cli: Cli, shell_project: Path, cache_dir: Path) -> None:
    run = cli("run", shell_project, "--json")
    ok = cli("cache", "verify", "--json")
    assert ok.code == 0
    assert json.loads(ok.stdout) == {"ok": True, "checked": 4, "evicted": [], "warnings": []}
    digest = run.steps()["gen"]["outputs"]["greeting.txt"]
    blob = cache_dir / "blobs" / digest[:2] / digest
    os.chmod(blob, 0o644)
    blob.write_text("tampered")
    bad = cli("cache", "verify", "--json")
    assert bad.code == 1  # it found and evicted damage
    doc = json.loads(bad.stdout)
    assert doc["ok"] is False and doc["checked"] == 4
    assert doc["evicted"] == [run.steps()["gen"]["key"]]
    assert doc["warnings"] and run.steps()["gen"]["key"][:12] in " ".join(doc["warnings"])
    assert len(_entries(cli)) == 3
    text = cli("cache", "verify")
    assert "checked 3 entries; evicted 0" in text.stdout


def test_cache_gc_max_size_0_empties_the_store(
    cli: Cli, shell_project: Path, cache_dir: Path
) -> None:
    cli("run", shell_project)
    assert list((cache_dir / "blobs").glob("*/*"))
    result = cli("cache", "gc", "--max-size", "0", "--json")
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["removed"] == 4
    assert doc["freed_bytes"] > 0
    assert _entries(cli) == []
    assert list((cache_dir / "blobs").glob("*/*")) == []
    rebuilt = cli("run", shell_project, "--json")
    assert set(rebuilt.statuses().values()) == {"built"}


def test_cache_gc_with_room_keeps_everything(cli: Cli, shell_project: Path) -> None:
    cli("run", shell_project)
    result = cli("cache", "gc", "--max-size", "1G")
    assert result.code == 0
    assert "removed 0 entries" in result.stdout
    assert len(_entries(cli)) == 4


def test_cache_gc_bad_size_is_a_usage_error(cli: Cli) -> None:
    result = cli("cache", "gc", "--max-size", "lots")
    assert result.code == 2
    assert "bad size 'lots'" in result.stderr


def test_cache_rm_by_prefix_then_rebuilds_that_node(
    cli: Cli, shell_project: Path, cache_dir: Path
) -> None:
    run = cli("run", shell_project, "--json")
    key = run.steps()["report@linux/arm64"]["key"]
    result = cli("cache", "rm", key[:12], "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"removed": key}
    store = Store(cache_dir)
    try:
        assert key not in set(store.keys())
        assert len(store.keys()) == 3
    finally:
        store.close()
    again = cli("run", shell_project, "--json")
    assert again.statuses()["report@linux/arm64"] == "built"
    assert again.statuses()["report@linux/amd64"] == "cached"


def test_cache_rm_unknown_key(cli: Cli, shell_project: Path) -> None:
    cli("run", shell_project)
    result = cli("cache", "rm", "zzzz")
    assert result.code != 0
    assert "no entries match 'zzzz'" in result.stderr
    assert len(_entries(cli)) == 4
