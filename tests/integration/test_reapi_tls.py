"""REAPI over TLS on the real cluster: a second BuildGrid front-end of the same scheduler
database and CAS (scripts/reapi-env.sh's), serving grpcs on 127.0.0.1:50052 with a
certificate from a CA made here. `plan run --executor remote` with `[execution]
server_cert` (relative to plan.toml) and an `env:` auth header runs the step on the
cluster's worker; a CA that did not sign the server's certificate is refused (exit 3)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit import Cli, require_component

from crossplan.cache.store import Store

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ENV_SCRIPT = REPO / "scripts" / "reapi-env.sh"
STATE = Path(os.environ.get("CROSSPLAN_REAPI_STATE", "/var/tmp/crossplan-reapi"))
VENV = Path(os.environ.get("CROSSPLAN_REAPI_CACHE", "/var/cache/crossplan-ci/reapi")) / "bgd-venv"
PORT = 50052


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}", cwd=d)


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def tls_front_end(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    up = subprocess.run(["bash", str(ENV_SCRIPT), "status"], capture_output=True, check=False,
                        timeout=60).returncode == 0
    require_component(up, "the REAPI cluster is not running (scripts/reapi-env.sh up)")
    require_component((STATE / "bgd.yml").is_file() and (VENV / "bin" / "bgd").is_file(),
                      "scripts/reapi-env.sh's BuildGrid config and venv")
    d = tmp_path_factory.mktemp("tls")
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext", cwd=d)
    plain = (STATE / "bgd.yml").read_text()
    channel = '    address: "127.0.0.1:50051"\n    insecure-mode: true\n'
    assert channel in plain, "scripts/reapi-env.sh's server block changed"
    (d / "bgd-tls.yml").write_text(plain.replace(channel, (
        f'    address: "127.0.0.1:{PORT}"\n    insecure-mode: false\n    credentials:\n'
        f'      tls-server-key: {d / "server.key"}\n      tls-server-cert: {d / "server.pem"}\n'
    )))
    log = (d / "server.log").open("wb")
    proc = subprocess.Popen([str(VENV / "bin" / "bgd"), "server", "start", str(d / "bgd-tls.yml")],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not listening(PORT):
            assert proc.poll() is None, (d / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the TLS front-end did not start"
            time.sleep(0.3)
        yield d
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def project(root: Path, ca: Path, retries: int = 6) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "data" / "salt").write_text(uuid.uuid4().hex + "\n")
    (root / "ca.pem").write_bytes(ca.read_bytes())
    (root / "plan.toml").write_text(
        f'[project]\nname = "tls"\nplatforms = ["linux/amd64"]\n\n[execution]\n'
        f'remote = "grpcs://127.0.0.1:{PORT}"\ninstance = "main"\nserver_cert = "ca.pem"\n'
        f"retries = {retries}\n"
        'headers = { authorization = "env:CROSSPLAN_TEST_RBE_TOKEN" }\n\n'
        '[steps.t]\nkind = "shell"\nsrc = "data/"\n'
        'command = ["sh", "-c", "cat salt > out"]\noutputs = ["out"]\n')
    return root


def test_grpcs_with_the_servers_ca_runs_remotely(
    tls_front_end: Path, cli: Cli, tmp_path: Path,
) -> None:
    proj = project(tmp_path / "ok", tls_front_end / "ca.pem")
    store = tmp_path / "store"
    r = cli("run", str(proj / "plan.toml"), "--executor", "remote", "--json", timeout=300,
            env={"CROSSPLAN_CACHE_DIR": str(store), "CROSSPLAN_TEST_RBE_TOKEN": "Bearer t0k"})
    assert r.code == 0, r.stderr[-3000:]
    step = r.json()["steps"][0]
    assert step["status"] == "built"
    s = Store(store)
    try:
        entry = s.get(str(step["key"]))
        assert entry is not None
        remote = dict(entry.meta.get("remote", {}))
    finally:
        s.close()
    assert remote["endpoint"] == f"grpcs://127.0.0.1:{PORT}"
    assert remote["worker"] == "crossplan-x86-64" and remote["cached"] is False


def test_grpcs_with_another_ca_is_refused(tls_front_end: Path, cli: Cli, tmp_path: Path) -> None:
    proj = project(tmp_path / "bad", tls_front_end / "other-ca.pem", retries=1)
    r = cli("run", str(proj / "plan.toml"), "--executor", "remote", timeout=300, env={
        "CROSSPLAN_CACHE_DIR": str(tmp_path / "store"), "CROSSPLAN_TEST_RBE_TOKEN": "x"})
    assert r.code == 3, r.stderr[-3000:]
    assert f"127.0.0.1:{PORT}" in r.stderr and "Traceback" not in r.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in r.stderr and "server_cert" in r.stderr
