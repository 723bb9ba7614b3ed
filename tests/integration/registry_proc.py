"""A private docker-registry process on a free loopback port, for tests that stop it,
corrupt its storage, make it read-only or put it behind htpasswd auth."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from testkit import require_component

__all__ = ["RegistryProc", "free_port", "need_registry"]

_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
    readonly:
      enabled: {readonly}
http:
  addr: 127.0.0.1:{port}
  relativeurls: true
{auth}"""
_AUTH = """\
auth:
  htpasswd:
    realm: crossplan-test
    path: {path}
"""
# One user with a placeholder hash: the tests never log in, they check the refusal.
_HTPASSWD = "ci:$2y$05$Lf1y1Qk8dBlDpQ4ZsQd6D.2GJg2cL4Cw6f6kzN7B5l2uWAaN2uJZ6\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def need_registry() -> None:
    require_component(shutil.which("docker-registry") is not None,
                      "needs docker-registry (apt-get install docker-registry)")


class RegistryProc:
    """``start()``/``stop()`` a registry whose storage lives in ``dir/data`` (kept across
    restarts, so a test can stop it, or restart it read-only over the same blobs)."""

    def __init__(self, directory: Path, *, auth: bool = False) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data = self.dir / "data"
        self.port = free_port()
        self.auth = auth
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, *, readonly: bool = False) -> RegistryProc:
        need_registry()
        auth = ""
        if self.auth:
            (self.dir / "htpasswd").write_text(_HTPASSWD)
            auth = _AUTH.format(path=self.dir / "htpasswd")
        config = self.dir / "config.yml"
        config.write_text(_CONFIG.format(
            root=self.data, port=self.port, readonly=str(readonly).lower(), auth=auth,
        ))
        log = self.dir / "registry.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["docker-registry", "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"registry exited: {log.read_text()}")
            try:
                if httpx.get(f"http://{self.address}/v2/", timeout=1).status_code in (200, 401):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"registry did not answer on {self.address}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def blob_file(self, digest: str) -> Path:
        """Where the registry keeps a blob's bytes (``sha256:<hex>``)."""
        hexd = digest.removeprefix("sha256:")
        return self.data / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"

    def tags(self, repo: str) -> list[str]:
        resp = httpx.get(f"http://{self.address}/v2/{repo}/tags/list", timeout=10)
        if resp.status_code == 404:
            return []
        return sorted(resp.json().get("tags") or [])
