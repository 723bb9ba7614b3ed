"""Push to a real registry (docker-registry on a free loopback port, one per session)."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from registry_proc import free_port
from testkit import require_component

from crossplan.backends.oci import (
    BuiltIndex,
    ImageSpec,
    LayerEntry,
    LayerSpec,
    RegistryClient,
    build_index,
    pull_base,
    push_index,
    sha256_digest,
    validate_index,
    write_layout,
)
from crossplan.errors import EnvironmentProblem
from crossplan.platforms import Platform

pytestmark = pytest.mark.integration

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")
PLATFORMS = (AMD64, ARM64)
WRITES = frozenset({"PUT", "POST", "PATCH", "DELETE"})


@pytest.fixture
def registry(session_registry: str) -> str:
    """This module's tests share the session's registry (tests/integration/conftest.py)."""
    return session_registry


class _Proxy(ThreadingHTTPServer):
    daemon_threads = True
    upstream: tuple[str, int]
    requests: list[tuple[str, str]]

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.requests if m in WRITES]


class _Forward(BaseHTTPRequestHandler):
    """Forwards each request to the registry unchanged and records (method, path)."""

    protocol_version = "HTTP/1.1"
    server: _Proxy

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        self.server.requests.append((self.command, self.path))
        conn = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        skip = {"connection", "keep-alive", "content-length"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        self.send_response_only(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() not in {"connection", "transfer-encoding", "content-length"}:
                self.send_header(key, value)
        size = resp.getheader("Content-Length", "0") if self.command == "HEAD" else len(data)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def proxy(registry: str) -> Iterator[_Proxy]:
    """A counting pass-through in front of the registry: ``proxy.requests`` logs every call."""
    server = _Proxy(("127.0.0.1", 0), _Forward)
    host, port = registry.split(":")
    server.upstream = (host, int(port))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _address(server: _Proxy) -> str:
    return f"127.0.0.1:{server.server_address[1]}"


def _built(text: str = "v1") -> BuiltIndex:
    specs = {
        p: ImageSpec(
            layers=[
                LayerSpec(
                    (
                        LayerEntry(
                            "/usr/local/bin/hello",
                            data=f"#!/bin/sh\necho {text} on {p}\n".encode(),
                            mode=0o755,
                        ),
                    ),
                    "crossplan step 'app'",
                )
            ],
            entrypoint=["/usr/local/bin/hello"],
            created=1_700_000_000,
        )
        for p in PLATFORMS
    }
    return build_index(specs, revision=text)


def _skopeo(*argv: str) -> str:
    require_component(shutil.which("skopeo") is not None, "needs skopeo")
    proc = subprocess.run(["skopeo", *argv], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _tag_digest(registry: str, repo: str, tag: str) -> str | None:
    with RegistryClient(registry) as client:
        found = client.get_manifest(repo, tag)
    return sha256_digest(found[0]) if found else None


def test_skopeo_copies_our_layout_into_the_registry(registry: str, tmp_path: Path) -> None:
    built = _built()
    layout = write_layout(built, tmp_path / "layout", ref_name="1.0")
    _skopeo(
        "copy",
        "--all",
        f"oci:{layout}:1.0",
        f"docker://{registry}/skopeo/hello:1",
        "--dest-tls-verify=false",
    )
    assert _tag_digest(registry, "skopeo/hello", "1") == built.digest


def test_push_then_skopeo_sees_the_same_index(registry: str, tmp_path: Path) -> None:
    built = _built()
    result = push_index(built, f"{registry}/demo/hello:1.0", tags=["latest"], arch_tags=True)
    assert result.index_digest == built.digest
    raw = _skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry}/demo/hello:1.0")
    assert sha256_digest(raw.encode()) == built.digest
    info = json.loads(
        _skopeo("inspect", "--tls-verify=false", f"docker://{registry}/demo/hello:1.0-arm64")
    )
    assert info["Architecture"] == "arm64" and info["Digest"] == built.manifests[ARM64]
    out = tmp_path / "copied"
    source = f"docker://{registry}/demo/hello:latest"
    _skopeo("copy", "--all", "--src-tls-verify=false", source, f"oci:{out}:x")
    assert _tag_digest(registry, "demo/hello", "latest") == built.digest


def test_second_push_writes_nothing(proxy: _Proxy) -> None:
    built = _built("twice")
    target = f"{_address(proxy)}/demo/twice:1.0"
    first = push_index(built, target, tags=["stable"])
    assert first.blobs_uploaded == 4 and first.manifests_uploaded == 3
    assert len(proxy.writes()) > 0
    proxy.requests.clear()
    second = push_index(built, target, tags=["stable"])
    assert second.up_to_date
    assert proxy.writes() == []
    assert proxy.requests  # it did look


def test_skips_existing_blobs_and_mounts_base_layers(proxy: _Proxy, registry: str) -> None:
    address = _address(proxy)
    base = _built("base")
    push_index(base, f"{registry}/lib/base:1")
    bases = pull_base(f"{address}/lib/base:1", PLATFORMS)
    child = build_index(
        {
            p: ImageSpec(base=b, layers=[LayerSpec((LayerEntry("/etc/motd", data=b"hi"),), "m")])
            for p, b in bases.items()
        }
    )
    assert validate_index(child, read_layers=False) == []
    proxy.requests.clear()
    result = push_index(child, f"{address}/app/child:1")
    assert result.blobs_mounted == 2  # the base layers: mounted, never downloaded
    assert result.blobs_uploaded == 3  # one new layer (shared by both platforms), two configs
    mounts = [p for m, p in proxy.requests if m == "POST" and "mount=" in p]
    assert len(mounts) == 2
    assert not any(m == "GET" and "/blobs/" in p for m, p in proxy.requests)
    again = _built("base")  # same content: every blob already there
    result = push_index(again, f"{address}/lib/base:2")
    assert result.blobs_skipped == 4 and result.blobs_uploaded == 0
    assert result.manifests_skipped == 3 and result.tags_written == ("2",)


class _Crash(Exception):
    pass


@pytest.mark.parametrize("crash_at", ["first manifest", "index", "tag"])
def test_interrupted_push_never_exposes_incomplete_index(registry: str, crash_at: str) -> None:
    repo = f"crash/{crash_at.replace(' ', '-')}"
    old, new = _built("old"), _built("new")
    push_index(old, f"{registry}/{repo}:1.0")

    class Crashing(RegistryClient):
        def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
            is_index = media_type.endswith("index.v1+json")
            if (
                (crash_at == "first manifest")
                or (crash_at == "index" and is_index and ref.startswith("sha256:"))
                or (crash_at == "tag" and not ref.startswith("sha256:"))
            ):
                raise _Crash(crash_at)
            return super().put_manifest(repo, ref, data, media_type)

    with Crashing(registry) as crashing, pytest.raises(_Crash):
        push_index(new, f"{registry}/{repo}:1.0", client=crashing)
    assert _tag_digest(registry, repo, "1.0") == old.digest  # still the old, complete index
    result = push_index(new, f"{registry}/{repo}:1.0")
    assert result.blobs_uploaded == 0 and result.tags_written == ("1.0",)
    raw = _skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry}/{repo}:1.0")
    assert sha256_digest(raw.encode()) == new.digest
    for platform in PLATFORMS:
        info = _skopeo(
            f"--override-arch={platform.arch}",
            "inspect",
            "--tls-verify=false",
            f"docker://{registry}/{repo}:1.0",
        )
        assert json.loads(info)["Layers"] == [d.digest for d in new.images[platform].layers]


def test_unreachable_registry_is_exit_3() -> None:
    port = free_port()  # nothing listens here
    client = RegistryClient(f"127.0.0.1:{port}", attempts=2, backoff=0.01)
    with pytest.raises(EnvironmentProblem) as err:
        push_index(_built(), f"127.0.0.1:{port}/demo/x:1", client=client)
    assert err.value.exit_code == 3
    assert f"curl http://127.0.0.1:{port}/v2/" in str(err.value)
