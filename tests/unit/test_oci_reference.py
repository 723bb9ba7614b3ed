"""Image reference parsing, table-driven."""

from __future__ import annotations

import pytest

from crossplan.backends.oci import Reference
from crossplan.backends.oci.reference import is_loopback
from crossplan.errors import RecipeError

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("localhost:5000/demo/hello:1.0", "localhost:5000", "demo/hello", "1.0", None),
        ("localhost/demo", "localhost", "demo", None, None),
        (f"127.0.0.1:5000/x@{DIGEST}", "127.0.0.1:5000", "x", None, DIGEST),
        (f"ghcr.io/o/r:v1@{DIGEST}", "ghcr.io", "o/r", "v1", DIGEST),
        ("[::1]:5000/a/b:c", "[::1]:5000", "a/b", "c", None),
        ("alpine", "docker.io", "library/alpine", None, None),
        ("alpine:3.19", "docker.io", "library/alpine", "3.19", None),
        ("docker://alpine:3.19", "docker.io", "library/alpine", "3.19", None),
        ("user/app:latest", "docker.io", "user/app", "latest", None),
        ("index.docker.io/library/busybox", "docker.io", "library/busybox", None, None),
        (
            "registry.example.com:8443/a/b/c:1.0-rc_1",
            "registry.example.com:8443",
            "a/b/c",
            "1.0-rc_1",
            None,
        ),
    ],
)
def test_parse(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )


def test_ref_and_str() -> None:
    ref = Reference.parse("localhost:5000/demo/hello:1.0")
    assert ref.ref == "1.0"
    assert str(ref) == "localhost:5000/demo/hello:1.0"
    assert ref.with_digest(DIGEST).ref == DIGEST
    assert str(ref.with_digest(DIGEST)) == f"localhost:5000/demo/hello:1.0@{DIGEST}"
    assert Reference.parse("localhost:5000/x").ref == "latest"
    assert ref.with_tag("2").name == "localhost:5000/demo/hello"


@pytest.mark.parametrize(
    "text", ["Localhost:5000/UPPER", "host:5000/x:bad tag", "x@sha256:short", "host.io/", "a//b"]
)
def test_invalid(text: str) -> None:
    with pytest.raises(RecipeError) as err:
        Reference.parse(text)
    assert err.value.exit_code == 2
    assert "HOST[:PORT]/REPO" in str(err.value)


@pytest.mark.parametrize(
    ("registry", "loopback"),
    [
        ("localhost:5000", True),
        ("localhost", True),
        ("127.0.0.1:5000", True),
        ("[::1]:5000", True),
        ("ghcr.io", False),
        ("docker.io", False),
        ("10.0.0.1:5000", False),
    ],
)
def test_loopback(registry: str, loopback: bool) -> None:
    assert is_loopback(registry) is loopback
