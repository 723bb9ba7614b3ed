"""Two stores sharing one remote cache in a real registry: build once, substitute everywhere.

Every test runs the real `plan` CLI against a private docker-registry on loopback."""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

import pytest
from registry_proc import RegistryProc
from testkit import EXAMPLES, Cli, CliResult

pytestmark = pytest.mark.integration

NODES = {"gen", "count", "report@linux/amd64", "report@linux/arm64", "image"}
REPO = "demo/plan-cache"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """examples/shell with its image step: gen, count -> report@{amd64,arm64} -> image."""
    dest = tmp_path / "proj"
    shutil.copytree(EXAMPLES / "shell", dest)
    return dest


def run(
    cli: Cli, project: Path, store: Path, *args: str, env: dict[str, str] | None = None
) -> CliResult:
    env = {"CROSSPLAN_CACHE_DIR": str(store), **(env or {})}
    res = cli("run", project, "--json", *args, env=env)
    assert res.code == 0, res.stderr + res.stdout
    return res


def same_tree(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return all(filecmp.cmp(a / f, b / f, shallow=False) for f in files)


def test_second_store_builds_nothing_and_gets_identical_artifacts(
    cli: Cli, project: Path, registry: RegistryProc, tmp_path: Path
) -> None:
    remote = f"{registry.address}/{REPO}"
    first = run(cli, project, tmp_path / "store1", "--cache-remote", remote,
                "--output", f"oci:{tmp_path / 'out1'}", "--export", str(tmp_path / "exp1"))
    assert first.statuses() == dict.fromkeys(NODES, "built")
    assert first.json()["warnings"] == []
    assert len(registry.tags(REPO)) == len(NODES)  # one tag per action key

    second = run(cli, project, tmp_path / "store2", "--cache-remote", remote,
                 "--output", f"oci:{tmp_path / 'out2'}", "--export", str(tmp_path / "exp2"))
    assert second.statuses() == dict.fromkeys(NODES, "substituted")
    assert second.json()["warnings"] == []
    for node, step in second.steps().items():
        assert step["key"] == first.steps()[node]["key"]
        assert step["outputs"] == first.steps()[node]["outputs"]
    assert second.json()["images"][0]["index_digest"] == first.json()["images"][0]["index_digest"]
    assert same_tree(tmp_path / "out1", tmp_path / "out2")
    assert same_tree(tmp_path / "exp1", tmp_path / "exp2")

    third = run(cli, project, tmp_path / "store2", "--cache-remote", remote)
    assert third.statuses() == dict.fromkeys(NODES, "cached")


def test_remote_from_plan_toml_and_env(
    cli: Cli, project: Path, registry: RegistryProc, tmp_path: Path
) -> None:
    toml = project / "plan.toml"
    toml.write_text(toml.read_text() + f'\n[cache]\nremote = "{registry.address}/toml/cache"\n')
    run(cli, project, tmp_path / "s1")
    assert len(registry.tags("toml/cache")) == len(NODES)
    env = {"CROSSPLAN_CACHE_REMOTE": f"{registry.address}/env/cache"}
    run(cli, project, tmp_path / "s2", env=env)
    assert len(registry.tags("env/cache")) == len(NODES)
    res = run(cli, project, tmp_path / "s3", "--cache-remote", f"{registry.address}/toml/cache",
              env=env)
    assert set(res.statuses().values()) == {"substituted"}


def test_read_mode_substitutes_but_never_pushes(
    cli: Cli, project: Path, registry: RegistryProc, tmp_path: Path
) -> None:
    remote = f"{registry.address}/{REPO}"
    run(cli, project, tmp_path / "s1", "--cache-remote", remote, "--cache-mode", "read")
    assert registry.tags(REPO) == []
    run(cli, project, tmp_path / "s2", "--cache-remote", remote)
    res = run(cli, project, tmp_path / "s3", "--cache-remote", remote, "--cache-mode", "read")
    assert set(res.statuses().values()) == {"substituted"}
    off = run(cli, project, tmp_path / "s4", "--cache-remote", remote, "--cache-mode", "off")
    assert set(off.statuses().values()) == {"built"}


def test_push_pull_and_explain(cli: Cli, project: Path, registry: RegistryProc, tmp_path: Path
                               ) -> None:
    remote = f"{registry.address}/{REPO}"
    s1 = {"CROSSPLAN_CACHE_DIR": str(tmp_path / "s1")}
    s2 = {"CROSSPLAN_CACHE_DIR": str(tmp_path / "s2")}
    built = run(cli, project, tmp_path / "s1")  # no remote at all
    assert registry.tags(REPO) == []

    ex = cli("explain", "report", "-f", project, "--platform", "linux/arm64", "--json",
             "--cache-remote", remote, env=s2)
    assert ex.code == 0, ex.stderr
    assert ex.json()["remote"] is False and ex.json()["key"] is None  # deps unknown anywhere

    push = cli("cache", "push", "-f", project, "--cache-remote", remote, "--json", env=s1)
    assert push.code == 0, push.stderr
    assert set(push.json()["nodes"].values()) == {"pushed"}
    assert len(registry.tags(REPO)) == len(NODES)

    ex = cli("explain", "report", "-f", project, "--platform", "linux/arm64", "--json",
             "--cache-remote", remote, env=s2)
    assert ex.code == 0, ex.stderr
    assert ex.json()["remote"] is True and ex.json()["cached"] is False
    assert ex.json()["key"] == built.steps()["report@linux/arm64"]["key"]  # via the remote
    text = cli("explain", "report", "-f", project, "--platform", "linux/arm64",
               "--cache-remote", remote, env=s2)
    assert "in the remote cache: yes" in text.stdout

    pull = cli("cache", "pull", "-f", project, "--cache-remote", remote, "--json", env=s2)
    assert pull.code == 0, pull.stderr
    assert pull.json()["nodes"] == dict.fromkeys(
        ["count", "gen", "report@linux/amd64", "report@linux/arm64", "image"], "pulled"
    )
    again = run(cli, project, tmp_path / "s2")  # no remote: everything is local now
    assert set(again.statuses().values()) == {"cached"}
    ex = cli("explain", "image", "-f", project, "--json", "--cache-remote", remote, env=s2)
    assert ex.json()["remote"] is True and ex.json()["cached"] is True
    no_remote = cli("explain", "image", "-f", project, "--json", env=s2)
    assert no_remote.json()["remote"] is None


def test_push_needs_a_remote_and_readwrite(cli: Cli, project: Path, tmp_path: Path) -> None:
    res = cli("cache", "push", "-f", project)
    assert res.code == 2 and "no remote cache is configured" in res.stderr
    res = cli("cache", "push", "-f", project, "--cache-remote", "localhost:5000/x",
              "--cache-mode", "read")
    assert res.code == 2 and "readwrite" in res.stderr
    res = cli("run", project, "--cache-remote", "localhost:5000/x", "--cache-mode", "maybe")
    assert res.code == 2 and "unknown cache mode 'maybe'" in res.stderr


def test_signed_entries_and_trusted_keys(
    cli: Cli, project: Path, registry: RegistryProc, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    for name in ("ci-1", "other-1"):
        res = cli("cache", "keygen", "--out", keys, "--name", name, "--json")
        assert res.code == 0, res.stderr
    ci_pub = (keys / "ci-1.pub").read_text().strip()
    toml = project / "plan.toml"
    base = toml.read_text()
    remote = f"{registry.address}/{REPO}"

    unsigned = f"{registry.address}/unsigned/cache"
    run(cli, project, tmp_path / "s0", "--cache-remote", unsigned)
    toml.write_text(base + f'\n[cache]\nremote = "{remote}"\nsigning_key = "{keys}/ci-1.key"\n')
    run(cli, project, tmp_path / "s1")

    toml.write_text(base + f'\n[cache]\nremote = "{remote}"\ntrusted_keys = ["{ci_pub}"]\n')
    ok = run(cli, project, tmp_path / "s2", "--cache-mode", "read")
    assert set(ok.statuses().values()) == {"substituted"}

    refused = run(cli, project, tmp_path / "s3", "--cache-mode", "read",
                  "--cache-remote", unsigned)
    assert set(refused.statuses().values()) == {"built"}
    warnings = refused.json()["warnings"]
    assert len(warnings) == len(NODES) and all("unsigned" in w for w in warnings)

    other_pub = (keys / "other-1.pub").read_text().strip()
    toml.write_text(base + f'\n[cache]\nremote = "{remote}"\ntrusted_keys = ["{other_pub}"]\n')
    wrong = run(cli, project, tmp_path / "s4", "--cache-mode", "read")
    assert set(wrong.statuses().values()) == {"built"}
    warnings = wrong.json()["warnings"]
    assert len(warnings) == len(NODES) and all("'ci-1'" in w for w in warnings)
