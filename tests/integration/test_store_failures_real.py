"""The store's failure modes, for real: a read-only store and a full disk (tmpfs mounts: this
needs root, as CI has) exit 3 without a traceback; gc during a build never pulls a blob from
under it; a SIGKILLed `plan run` leaves no step process behind and its tmp is swept; clean
runs leave nothing in tmp/; `plan cache verify` exits 1 on damage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from testkit import (
    Cli,
    CliResult,
    ProjectFactory,
    plan_argv,
    processes,
    require_component,
    wait_until,
)

pytestmark = pytest.mark.integration


def _recipe(steps: str) -> str:
    return f"""
        [project]
        name = "store-failures"
        platforms = ["linux/amd64"]

        [sandbox]
        mode = "off"
        {steps}
    """


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``tmpfs("2m")`` -> a fresh tmpfs mount of that size (root only), unmounted after."""
    require_component(os.geteuid() == 0, "these tests mount tmpfs: they need root")
    mounts: list[Path] = []

    def make(size: str) -> Path:
        where = tmp_path / f"mnt{len(mounts)}"
        where.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                       check=True)
        mounts.append(where)
        return where / "store"

    yield make
    for m in reversed(mounts):
        subprocess.run(["umount", "-l", str(m)], check=False)


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr


def test_read_only_store_exits_3_naming_it(
    cli: Cli, make_project: ProjectFactory, tmpfs: Callable[[str], Path]
) -> None:
    store = tmpfs("16m")
    proj = make_project(_recipe("""
        [steps.a]
        kind = "shell"
        src = "src/"
        command = ["sh", "-c", "cat input.txt > out.txt"]
        outputs = ["out.txt"]
    """))
    env = {"CROSSPLAN_CACHE_DIR": str(store)}
    first = cli("run", proj, env=env)
    assert first.code == 0, first.stderr
    (proj / "src" / "input.txt").write_text("changed\n")
    subprocess.run(["mount", "-o", "remount,ro", str(store.parent)], check=True)
    for args in (("run", proj), ("cache", "gc", "--max-size", "0"), ("cache", "verify")):
        result = cli(*args, env=env)
        assert result.code == 3, (args, result.stdout, result.stderr)
        assert str(store) in result.stderr
        assert "read-only" in result.stderr
        _no_traceback(result.stderr)


def test_full_disk_exits_3_and_leaves_a_clean_store(
    cli: Cli, make_project: ProjectFactory, tmpfs: Callable[[str], Path]
) -> None:
    store = tmpfs("2m")
    proj = make_project(_recipe("""
        [steps.big]
        kind = "shell"
        src = "src/"
        command = ["sh", "-c", "head -c 5000000 /dev/zero > big.bin"]
        outputs = ["big.bin"]
    """))
    env = {"CROSSPLAN_CACHE_DIR": str(store)}
    result = cli("run", proj, env=env)
    assert result.code == 3, (result.stdout, result.stderr)
    assert str(store) in result.stderr
    assert "full" in result.stderr
    _no_traceback(result.stderr)
    assert list((store / "tmp").iterdir()) == []
    verify = cli("cache", "verify", "--json", env=env)
    assert verify.code == 0, verify.stderr
    assert json.loads(verify.stdout)["ok"] is True


def _start_run(proj: Path, env: Mapping[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(plan_argv("run", str(proj), *args), env=dict(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_gc_during_a_build_never_deletes_what_it_uses(
    cli: Cli, make_project: ProjectFactory, cli_env: dict[str, str], cache_dir: Path
) -> None:
    proj = make_project(_recipe("""
        [steps.dep]
        kind = "shell"
        src = "src/"
        command = ["sh", "-c", "cat input.txt input.txt > dep.txt"]
        outputs = ["dep.txt"]

        [steps.slow]
        kind = "shell"
        src = "src/"
        command = ["sleep", "3.217"]
        outputs = []

        [steps.use]
        kind = "shell"
        src = "src/"
        deps = ["dep", "slow"]
        command = ["sh", "-c", "cat deps/dep/dep.txt > use.txt"]
        outputs = ["use.txt"]
    """))
    first = cli("run", proj, "dep")
    assert first.code == 0, first.stderr
    run = _start_run(proj, cli_env, "--json", "-j", "2")
    try:
        wait_until(lambda: processes("3.217"), 30, "the slow step")
        gc = cli("cache", "gc", "--max-size", "0", "--json")
        assert gc.code == 0, gc.stderr
        doc = json.loads(gc.stdout)
        assert doc["removed"] == 0
        assert len(doc["leased"]["entries"]) == 1  # dep's entry, read by the run
        stdout, stderr = run.communicate(timeout=60)
    finally:
        run.kill()
        run.communicate()
    assert run.returncode == 0, stderr
    assert "No such file" not in stderr
    statuses = {k.split("@")[0]: v for k, v in CliResult(0, stdout, stderr).statuses().items()}
    assert statuses == {"dep": "cached", "slow": "built", "use": "built"}
    verify = cli("cache", "verify", "--json")
    assert verify.code == 0, verify.stdout
    assert json.loads(verify.stdout) == {"ok": True, "checked": 3, "evicted": [],
                                         "warnings": []}
    after = cli("cache", "gc", "--max-size", "0", "--json")  # no run now: all goes
    assert json.loads(after.stdout)["removed"] == 3
    assert list((cache_dir / "blobs").glob("*/*")) == []


def test_kill_9_of_plan_run_leaves_no_step_process_and_its_tmp_is_swept(
    cli: Cli, make_project: ProjectFactory, cli_env: dict[str, str], cache_dir: Path
) -> None:
    proj = make_project(_recipe("""
        [steps.forever]
        kind = "shell"
        src = "src/"
        command = ["sleep", "300.123"]
        outputs = []
    """))
    run = _start_run(proj, cli_env)
    try:
        wait_until(lambda: processes("300.123"), 30, "the step's sleep")
        assert any(p.name.startswith("work-forever") for p in (cache_dir / "tmp").iterdir())
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=10)
        wait_until(lambda: not processes("300.123"), 5, "the sleep to die with plan")
    finally:
        run.kill()
        run.communicate()
        for pid in processes("300.123"):
            os.kill(pid, signal.SIGKILL)
    assert list((cache_dir / "leases").iterdir())  # the dead run's lease is still there
    ls = cli("cache", "ls", "--json")  # opening the store sweeps it
    assert ls.code == 0, ls.stderr
    assert list((cache_dir / "tmp").iterdir()) == []
    assert list((cache_dir / "leases").iterdir()) == []


def test_a_clean_run_leaves_nothing_in_tmp(
    cli: Cli, shell_project: Path, cache_dir: Path
) -> None:
    for _ in range(2):  # the second run is all cache hits: its log blobs already exist
        result = cli("run", shell_project)
        assert result.code == 0, result.stderr
        assert list((cache_dir / "tmp").iterdir()) == []
        assert list((cache_dir / "leases").iterdir()) == []


def test_cache_verify_exits_1_on_damage_with_its_warnings_in_json(
    cli: Cli, shell_project: Path, cache_dir: Path
) -> None:
    run = cli("run", shell_project, "--json")
    digest = run.steps()["gen"]["outputs"]["greeting.txt"]
    blob = cache_dir / "blobs" / digest[:2] / digest
    os.chmod(blob, 0o644)
    blob.write_text("tampered")
    bad = cli("cache", "verify", "--json")
    assert bad.code == 1
    doc = json.loads(bad.stdout)
    assert doc["ok"] is False
    assert doc["evicted"] == [run.steps()["gen"]["key"]]
    assert len(doc["warnings"]) == 1 and "failed verification" in doc["warnings"][0]
    again = cli("cache", "verify", "--json")
    assert again.code == 0
    assert json.loads(again.stdout)["ok"] is True
