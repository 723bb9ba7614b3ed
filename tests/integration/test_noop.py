"""The no-op: a run where the local store holds every node asks no one else. A remote cache
that fails every request (HTTP 500, each request recorded) is configured; a fully cached
`plan run` succeeds, reports every node `cached`, and the server saw no request."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from testkit import EXAMPLES, Cli

pytestmark = pytest.mark.integration

NODES = {"gen", "count", "report@linux/amd64", "report@linux/arm64", "image"}


class Failing(ThreadingHTTPServer):
    requests: list[str]


class _Handler(BaseHTTPRequestHandler):
    server: Failing

    def _fail(self) -> None:
        self.server.requests.append(f"{self.command} {self.path}")
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _fail

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def failing_registry() -> Iterator[Failing]:
    server = Failing(("127.0.0.1", 0), _Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    dest = tmp_path / "proj"
    shutil.copytree(EXAMPLES / "shell", dest)
    return dest


@pytest.mark.parametrize("mode", ["readwrite", "read"])
def test_cached_run_never_asks_the_remote(
    cli: Cli, project: Path, failing_registry: Failing, mode: str
) -> None:
    first = cli("run", project, "--json")
    assert first.code == 0, first.stderr
    assert first.statuses() == dict.fromkeys(NODES, "built")

    port = failing_registry.server_address[1]
    remote = f"127.0.0.1:{port}/crossplan/noop-cache"
    res = cli("run", project, "--json", "--cache-remote", remote, "--cache-mode", mode)
    assert res.code == 0, res.stderr + res.stdout
    assert res.statuses() == dict.fromkeys(NODES, "cached")
    assert res.json()["warnings"] == []
    assert failing_registry.requests == []

    # The same registry on a cold store is asked (the test's server does see requests).
    cold = cli("run", project, "--json", "--cache-remote", remote, "--cache-mode", mode,
               env={"CROSSPLAN_CACHE_DIR": str(project.parent / "cold")})
    assert cold.code == 0, cold.stderr + cold.stdout
    assert failing_registry.requests != []
