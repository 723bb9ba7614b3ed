"""The REAPI executor when things go wrong on the real cluster of scripts/reapi-env.sh: an
endpoint that is down (exit 3, a clear message), the server restarted mid-build and a worker
killed mid-action (retried to a correct result, or a clear error: never a wrong result)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from testkit import Cli, plan_argv, require_component

from crossplan.cache.store import Store

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ENV_SCRIPT = REPO / "scripts" / "reapi-env.sh"
STATE = Path(os.environ.get("CROSSPLAN_REAPI_STATE", "/var/tmp/crossplan-reapi"))
REMOTE = {"CROSSPLAN_EXECUTION_REMOTE": "grpc://127.0.0.1:50051",
          "CROSSPLAN_EXECUTION_INSTANCE": "main"}


def reapi(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ENV_SCRIPT), *args], capture_output=True, text=True,
                          check=False, timeout=timeout)


@pytest.fixture(scope="module")
def cluster() -> None:
    require_component(reapi("status").returncode == 0,
                      "the REAPI cluster is not running (scripts/reapi-env.sh up)")


def slow_project(root: Path, seconds: int, *, emulate: bool = False) -> tuple[Path, str]:
    """A shell step that sleeps, then writes a unique line (the expected output)."""
    (root / "data").mkdir(parents=True)
    line = f"done {uuid.uuid4().hex}"
    (root / "data" / "line.txt").write_text(line + "\n")
    plats = '["linux/arm64"]' if emulate else '["linux/amd64"]'
    (root / "plan.toml").write_text(
        f'[project]\nname = "slow"\nplatforms = {plats}\n\n[execution]\nretries = 8\n\n'
        f'[steps.slow]\nkind = "shell"\nsrc = "data/"\nemulate = {str(emulate).lower()}\n'
        f'command = ["sh", "-c", "sleep {seconds} && cp line.txt out.txt"]\n'
        'outputs = ["out.txt"]\n')
    return root, line + "\n"


def wait_for(cond: object, timeout: float = 60) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def executing(worker: str) -> bool:
    out = reapi("sql", f"select count(*) from jobs where stage = 3 and worker_name = '{worker}'")
    return out.stdout.strip() not in ("", "0")


def check_outcome(r: object, out: Path, want: str) -> None:
    """Either the build retried to the right bytes, or it failed clearly (exit 3/1)."""
    code, stderr = r.code, r.stderr  # type: ignore[attr-defined]
    print(f"outcome: exit {code}", stderr[-1500:])
    assert "Traceback" not in stderr
    if code == 0:
        assert out.read_text() == want
    else:
        assert code in (1, 3) and ("remote" in stderr or "cluster" in stderr), stderr


def test_endpoint_down_is_a_clear_exit_3(cli: Cli, tmp_path: Path) -> None:
    proj, _ = slow_project(tmp_path / "p", 0)
    text = (proj / "plan.toml").read_text().replace("retries = 8", "retries = 1")
    (proj / "plan.toml").write_text(text)
    t0 = time.monotonic()
    r = cli("run", str(proj / "plan.toml"), "--executor", "remote", timeout=60,
            env={"CROSSPLAN_EXECUTION_REMOTE": "grpc://127.0.0.1:9",
                 "CROSSPLAN_CACHE_DIR": str(tmp_path / "store")})
    assert r.code == 3, r.stderr
    assert "cannot reach the remote execution endpoint grpc://127.0.0.1:9" in r.stderr
    assert "reapi-env.sh up" in r.stderr and "Traceback" not in r.stderr
    assert time.monotonic() - t0 < 30


def test_server_restarted_mid_build(cluster: None, cli: Cli, tmp_path: Path) -> None:
    proj, want = slow_project(tmp_path / "p", 6)
    result: dict[str, object] = {}

    def build() -> None:
        result["r"] = cli("run", str(proj / "plan.toml"), "--executor", "remote",
                          "--export", str(tmp_path / "out"), timeout=240,
                          env={**REMOTE, "CROSSPLAN_CACHE_DIR": str(tmp_path / "store")})

    t = threading.Thread(target=build)
    t.start()
    try:
        assert wait_for(lambda: executing("crossplan-x86-64")), "the action never started"
        restarted = reapi("restart-server", timeout=120)
        assert restarted.returncode == 0, restarted.stderr
    finally:
        t.join(300)
    check_outcome(result["r"], tmp_path / "out" / "slow" / "linux_amd64" / "out.txt", want)


def test_worker_killed_mid_action(cluster: None, cli: Cli, tmp_path: Path) -> None:
    proj, want = slow_project(tmp_path / "p", 6, emulate=True)  # on the aarch64 worker
    result: dict[str, object] = {}

    def build() -> None:
        result["r"] = cli("run", str(proj / "plan.toml"), "--executor", "remote",
                          "--export", str(tmp_path / "out"), timeout=240,
                          env={**REMOTE, "CROSSPLAN_CACHE_DIR": str(tmp_path / "store")})

    t = threading.Thread(target=build)
    t.start()
    try:
        assert wait_for(lambda: executing("crossplan-aarch64")), "the action never started"
        pid = int((STATE / "worker-aarch64.pid").read_text())
        os.kill(pid, signal.SIGKILL)  # its supervisor starts a new one
    finally:
        t.join(300)
    check_outcome(result["r"], tmp_path / "out" / "slow" / "linux_arm64" / "out.txt", want)
    assert wait_for(lambda: reapi("status").returncode == 0, 60)  # the pool recovered


def test_ctrl_c_cancels_the_remote_operation(
    cluster: None, cli_env: dict[str, str], tmp_path: Path,
) -> None:
    proj, _ = slow_project(tmp_path / "p", 30)
    env = {**cli_env, **REMOTE, "CROSSPLAN_CACHE_DIR": str(tmp_path / "store")}
    proc = subprocess.Popen(plan_argv("run", str(proj), "--executor", "remote", "--progress",
                                      "plain"), env=env, cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: executing("crossplan-x86-64")), "the action never started"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert time.monotonic() - t0 < 15 and "Traceback" not in err
    # The server was told: the job is cancelled, not left running for 30 s.
    assert wait_for(lambda: reapi("sql", "select count(*) from jobs where cancelled and "
                                  "stage = 4").stdout.strip() not in ("", "0"), 20)
    store = Store(tmp_path / "store")
    try:
        assert store.keys() == []  # nothing of the interrupted step is stored
    finally:
        store.close()


def test_a_system_toolchain_never_runs_on_a_worker_without_it(
    cluster: None, cli: Cli, tmp_path: Path,
) -> None:
    """``system_toolchains = "remote"``: the Rust step (the machine's own cargo) carries its
    toolchain's fingerprint; no worker of this cluster advertises it, so the server refuses
    the action at once (exit 3, the property and the way out named) and nothing is queued."""
    proj = tmp_path / "rs"
    src = REPO / "examples" / "monorepo" / "services" / "worker-rust" / "src"
    shutil.copytree(src, proj / "src")
    (proj / "src" / "src" / "main.rs").write_text(
        (proj / "src" / "src" / "main.rs").read_text() + f"\n// {uuid.uuid4().hex}\n")
    (proj / "plan.toml").write_text(
        '[project]\nname = "rs"\nplatforms = ["linux/amd64"]\n\n[execution]\n'
        'system_toolchains = "remote"\n\n[steps.bin]\nkind = "rust"\nsrc = "src/"\n'
        'bin = "worker-rust"\n')
    before = reapi("sql", "select count(*) from jobs").stdout.strip()
    r = cli("run", str(proj / "plan.toml"), "--executor", "remote",
            env={**REMOTE, "CROSSPLAN_CACHE_DIR": str(tmp_path / "store")}, timeout=300)
    assert r.code == 3, r.stderr[-2000:]
    assert "crossplan-toolchain=" in r.stderr and "no worker" in r.stderr, r.stderr
    assert 'system_toolchains = "local"' in r.stderr and "Traceback" not in r.stderr
    assert reapi("sql", "select count(*) from jobs").stdout.strip() == before
