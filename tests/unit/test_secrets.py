"""Secrets are never shown: credentials in URLs are redacted in keys' components, records and
graph JSON (the key still changes with the password); bad key files are named, not echoed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from testkit import plan_of

from crossplan.cache.signing import PublicKey, SigningKey, load_public_key, load_signing_key
from crossplan.cli.render import graph_json
from crossplan.errors import RecipeError
from crossplan.recipes import load_text
from crossplan.redact import has_credentials, keyed_env, redact_env, redact_url


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://user:s3cret@proxy.example/", "https://***@proxy.example/"),
        ("https://token@proxy.example", "https://***@proxy.example"),
        ("https://user:p@ss@proxy.example:8443/x", "https://***@proxy.example:8443/x"),
        ("https://user:pa,ss@proxy.example", "https://***@proxy.example"),
        ("https://u:p@a.example,https://b.example|direct", "https://***@a.example,https://b.example|direct"),
        ("https://a.example,https://u:p@b.example,direct", "https://a.example,https://***@b.example,direct"),
        ("https://u1:p1@a.example|https://u2:p2@b.example", "https://***@a.example|https://***@b.example"),
        ("git+ssh://git@github.com/org/repo", "git+ssh://***@github.com/org/repo"),
        ("see http://u:p@h/ and ftp://x@y", "see http://***@h/ and ftp://***@y"),
        ("https://proxy.example/path@v1?q=a@b#c@d", "https://proxy.example/path@v1?q=a@b#c@d"),
        ("https://proxy.example", "https://proxy.example"),
        ("direct", "direct"),
        ("off", "off"),
        ("user@example.com", "user@example.com"),  # not a URL: no scheme
        ("", ""),
        ("-C target-cpu=native", "-C target-cpu=native"),
    ],
)
def test_redact_url(text: str, shown: str) -> None:
    assert redact_url(text) == shown
    assert has_credentials(text) == (text != shown)
    assert redact_url(shown) == shown  # idempotent


def test_redact_env_and_keyed_env() -> None:
    env = {"GOPROXY": "https://u:pw@proxy.example/", "GOPRIVATE": "example.com/*"}
    assert redact_env(env) == {"GOPROXY": "https://***@proxy.example/",
                               "GOPRIVATE": "example.com/*"}
    keyed = keyed_env(env)
    assert keyed["GOPRIVATE"] == "example.com/*"  # no credentials: exactly as it was
    assert keyed["GOPROXY"].startswith("https://***@proxy.example/ (blake3:")
    assert "pw" not in keyed["GOPROXY"].split("(blake3:")[0]
    assert keyed != keyed_env({**env, "GOPROXY": "https://u:other@proxy.example/"})
    assert keyed_env({"GOPROXY": "https://proxy.golang.org,direct"}) == {
        "GOPROXY": "https://proxy.golang.org,direct"}


RECIPE = """
[project]
name = "s"
platforms = ["linux/amd64"]

[steps.gen]
kind = "shell"
src = "."
command = ["sh", "-c", "echo hi > out.txt"]
outputs = ["out.txt"]
"""


def _plan(tmp_path: Path, goproxy: str) -> Any:
    recipe = load_text(RECIPE, file=tmp_path / "plan.toml")
    return plan_of(recipe, environ={"GOPROXY": goproxy, "GOPRIVATE": "example.com/*"})


def test_goproxy_credentials_appear_nowhere_but_change_the_key(tmp_path: Path) -> None:
    one = _plan(tmp_path, "https://alice:hunter2@proxy.example/")
    two = _plan(tmp_path, "https://alice:swordfish@proxy.example/")
    (node, pn), = one.nodes.items()
    shown = json.dumps({"components": dict(pn.components), "graph": graph_json(one)})
    assert "hunter2" not in shown and "alice" not in shown
    assert "https://***@proxy.example/ (blake3:" in json.dumps(dict(pn.components))
    assert graph_json(one)["nodes"][0]["action"]["env"]["GOPROXY"] == "https://***@proxy.example/"
    assert pn.components["env"]["GOPRIVATE"] == "example.com/*"
    # the step still gets the real value, and another password is another key
    assert pn.action.environment()["GOPROXY"] == "https://alice:hunter2@proxy.example/"
    assert one.input_keys()[node] != two.input_keys()[node]
    assert pn.action.key({}) != two.nodes[node].action.key({})


def test_env_without_credentials_enters_the_key_unchanged(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "https://proxy.golang.org,direct")
    (_, pn), = plan.nodes.items()
    assert dict(pn.components["env"]) == {"GOPROXY": "https://proxy.golang.org,direct",
                                          "GOPRIVATE": "example.com/*"}


# --- key files: named, never echoed -----------------------------------------------------

PASSWD = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (PASSWD.encode(), "is not NAME:BASE64"),
        (b"secret-name:c2hvcnQ=\n", "must hold 32 bytes, not 5"),
        (b"no colon here at all", "is not NAME:BASE64"),
        (b"\x7fELF\x02\x01\x01" + bytes(range(256)), "not ASCII text"),
        (b"A" * 10_000, "over 4096 bytes"),
    ],
)
def test_a_bad_key_file_names_the_file_not_its_bytes(
    tmp_path: Path, content: bytes, fragment: str
) -> None:
    key = tmp_path / "keys" / "ci.key"
    key.parent.mkdir()
    key.write_bytes(content)
    for load in (lambda: load_signing_key(key), lambda: load_public_key("keys/ci.key", tmp_path)):
        with pytest.raises(RecipeError) as info:
            load()
        text = str(info.value)
        assert str(key) in text and fragment in text
        assert "NAME:BASE64" in text
        for secret in ("root", "daemon", "secret-name", "c2hvcnQ", "ELF", "AAAA"):
            assert secret not in text.replace(str(key), "")


def test_inline_key_text_errors_stay_short_and_secrets_are_not_shown() -> None:
    with pytest.raises(RecipeError) as info:
        SigningKey.parse("my-secret-name:bm90IDMyIGJ5dGVz")
    assert "my-secret" not in str(info.value) and "bm90" not in str(info.value)
    with pytest.raises(RecipeError, match=re.escape("public key 'ci-1:AAA...' is not NAME:")):
        PublicKey.parse("ci-1:AAAA!!notbase64")
