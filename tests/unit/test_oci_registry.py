"""The registry client against httpx.MockTransport: retries, auth flows, errors, verification."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from crossplan.backends.oci import RegistryClient, RegistryError, sha256_digest
from crossplan.backends.oci.auth import Credentials, load_credentials, parse_challenge
from crossplan.errors import EnvironmentProblem

Handler = Callable[[httpx.Request], httpx.Response]
DATA = b"hello blob"
DIGEST = sha256_digest(DATA)


def _client(
    handler: Handler, creds: Credentials | None = None, registry: str = "127.0.0.1:5000"
) -> tuple[RegistryClient, list[float]]:
    sleeps: list[float] = []
    client = RegistryClient(
        registry,
        transport=httpx.MockTransport(handler),
        credentials=lambda _registry: creds,
        sleep=sleeps.append,
    )
    return client, sleeps


def test_retries_503_then_succeeds() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(503 if len(calls) < 3 else 200)

    client, sleeps = _client(handler)
    assert client.has_blob("demo", DIGEST) is True
    assert calls == ["HEAD", "HEAD", "HEAD"]
    assert sleeps == [0.25, 0.5]  # exponential backoff


def test_retry_after_is_honoured_and_attempts_are_bounded() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(429, headers={"Retry-After": "2"})

    client, sleeps = _client(handler)
    with pytest.raises(RegistryError) as err:
        client.has_blob("demo", DIGEST)
    assert len(calls) == 5
    assert sleeps == [2.0] * 4
    assert err.value.exit_code == 3 and "429" in str(err.value)


def test_unreachable_is_an_environment_problem() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("connection refused", request=request)

    client, sleeps = _client(handler)
    with pytest.raises(EnvironmentProblem) as err:
        client.get_manifest("demo/hello", "1.0")
    assert err.value.exit_code == 3
    assert "127.0.0.1:5000" in str(err.value) and "demo/hello:1.0" in str(err.value)
    assert "curl http://127.0.0.1:5000/v2/" in str(err.value)
    assert len(calls) == 5 and len(sleeps) == 4


def test_https_for_remote_registries() -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(404)

    client, _ = _client(handler, registry="ghcr.io")
    assert client.has_blob("o/r", DIGEST) is False
    assert urls == [f"https://ghcr.io/v2/o/r/blobs/{DIGEST}"]


def test_bearer_token_flow() -> None:
    seen: list[tuple[str, str | None]] = []
    challenge = (
        'Bearer realm="https://auth.test/token",service="reg.test",scope="repository:demo:pull"'
    )

    def handler(request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization")
        seen.append((request.url.path, auth))
        if request.url.host == "auth.test":
            assert request.url.params.get_list("scope") == ["repository:demo:pull"]
            assert request.url.params["service"] == "reg.test"
            assert auth == "Basic " + base64.b64encode(b"me:secret").decode()
            return httpx.Response(200, json={"token": "tok"})
        if auth != "Bearer tok":
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        return httpx.Response(200)

    client, _ = _client(handler, Credentials("me", "secret"))
    assert client.has_blob("demo", DIGEST)
    assert client.has_blob("demo", DIGEST)  # token cached: no second challenge
    assert [p for p, _ in seen] == [
        f"/v2/demo/blobs/{DIGEST}",
        "/token",
        f"/v2/demo/blobs/{DIGEST}",
        f"/v2/demo/blobs/{DIGEST}",
    ]


def test_anonymous_bearer_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            assert "authorization" not in request.headers
            return httpx.Response(200, json={"access_token": "anon"})
        if request.headers.get("authorization") != "Bearer anon":
            return httpx.Response(
                401, headers={"WWW-Authenticate": 'Bearer realm="http://auth.test/t"'}
            )
        return httpx.Response(200)

    client, _ = _client(handler)
    assert client.has_blob("demo", DIGEST)


def test_basic_auth_flow() -> None:
    expected = "Basic " + base64.b64encode(b"u:p").decode()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != expected:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        return httpx.Response(200)

    client, _ = _client(handler, Credentials("u", "p"))
    assert client.has_blob("demo", DIGEST)


@pytest.mark.parametrize("status", [401, 403])
def test_denied_names_registry_and_login(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"WWW-Authenticate": 'Basic realm="r"'})

    client, _ = _client(handler)
    with pytest.raises(EnvironmentProblem) as err:
        client.put_manifest("demo", "1.0", b"{}", "application/json")
    assert err.value.exit_code == 3
    assert "127.0.0.1:5000 denied access" in str(err.value)
    assert "docker login 127.0.0.1:5000" in str(err.value)


def test_get_blob_verifies_content() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"tampered", headers={"Docker-Content-Digest": DIGEST})

    client, _ = _client(handler)
    with pytest.raises(EnvironmentProblem, match="expected " + DIGEST):
        client.get_blob("demo", DIGEST)


def test_get_manifest_by_digest_verifies_and_404_is_none() -> None:
    body = b'{"schemaVersion":2}'

    def handler(request: httpx.Request) -> httpx.Response:
        assert "application/vnd.oci.image.index.v1+json" in request.headers["accept"]
        if request.url.path.endswith("/missing"):
            return httpx.Response(404)
        ct = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        return httpx.Response(200, content=body, headers=ct)

    client, _ = _client(handler)
    assert client.get_manifest("demo", "missing") is None
    found = client.get_manifest("demo", sha256_digest(body))
    assert found == (body, "application/vnd.oci.image.manifest.v1+json")
    with pytest.raises(EnvironmentProblem):
        client.get_manifest("demo", DIGEST)


def test_monolithic_upload() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": "/v2/demo/blobs/uploads/u1?_state=s"})
        return httpx.Response(201)

    client, _ = _client(handler)
    client.upload_blob("demo", DIGEST, DATA)
    post, put = requests
    assert post.url.path == "/v2/demo/blobs/uploads/"
    assert put.method == "PUT" and put.url.path == "/v2/demo/blobs/uploads/u1"
    assert dict(put.url.params) == {"_state": "s", "digest": DIGEST}
    assert put.content == DATA


def test_mount() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert dict(request.url.params) == {"mount": DIGEST, "from": "other/repo"}
        return httpx.Response(201)

    client, _ = _client(handler)
    assert client.mount_blob("demo", DIGEST, "other/repo") is True


def test_list_tags_follows_pagination() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "last" in request.url.params:
            return httpx.Response(200, json={"tags": ["c"]})
        link = '</v2/demo/tags/list?n=2&last=b>; rel="next"'
        return httpx.Response(200, json={"tags": ["a", "b"]}, headers={"Link": link})

    client, _ = _client(handler)
    assert client.list_tags("demo") == ["a", "b", "c"]


def test_parse_challenge() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/alpine:pull"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/alpine:pull",
    }


def _config(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    return path


def test_credentials_from_auths(tmp_path: Path) -> None:
    auth = base64.b64encode(b"alice:pa:ss").decode()
    path = _config(tmp_path, {"auths": {"https://localhost:5000/v1/": {"auth": auth}}})
    assert load_credentials("localhost:5000", config_path=path) == Credentials("alice", "pa:ss")
    assert load_credentials("ghcr.io", config_path=path) is None
    assert load_credentials("x", config_path=tmp_path / "missing.json") is None
    hub = _config(tmp_path, {"auths": {"https://index.docker.io/v1/": {"identitytoken": "t"}}})
    assert load_credentials("docker.io", config_path=hub) == Credentials(identity_token="t")


def test_credentials_from_helpers(tmp_path: Path) -> None:
    calls: list[tuple[list[str], str]] = []

    def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        calls.append((argv, kw["input"]))
        if kw["input"] == "nobody.io":
            return subprocess.CompletedProcess(argv, 1, "credentials not found in store", "")
        out = json.dumps({"ServerURL": kw["input"], "Username": "bob", "Secret": "s3"})
        return subprocess.CompletedProcess(argv, 0, out, "")

    path = _config(tmp_path, {"credHelpers": {"ghcr.io": "gh"}, "credsStore": "pass"})
    assert load_credentials("ghcr.io", config_path=path, run=run) == Credentials("bob", "s3")
    assert load_credentials("docker.io", config_path=path, run=run) == Credentials("bob", "s3")
    assert load_credentials("nobody.io", config_path=path, run=run) is None
    assert calls[0] == (["docker-credential-gh", "get"], "ghcr.io")
    assert calls[1] == (["docker-credential-pass", "get"], "https://index.docker.io/v1/")


def test_missing_helper_is_an_environment_problem(tmp_path: Path) -> None:
    def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError(argv[0])

    path = _config(tmp_path, {"credsStore": "nope"})
    with pytest.raises(EnvironmentProblem, match="docker-credential-nope"):
        load_credentials("ghcr.io", config_path=path, run=run)


def test_delete() -> None:
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path))
        return httpx.Response(202)

    client, _ = _client(handler)
    client.delete_manifest("demo", DIGEST)
    client.delete_blob("demo", DIGEST)
    assert seen == [
        ("DELETE", f"/v2/demo/manifests/{DIGEST}"),
        ("DELETE", f"/v2/demo/blobs/{DIGEST}"),
    ]
