"""The REAPI executor's pure parts as tables: which actions travel, platform properties
(sorted, per-ISA extras, system toolchain fingerprints), the Command (same argv/env as the
local sandbox, toolchains relocated), canonical input trees, endpoint settings, retries."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.executors.reapi.channel import Retrying
from crossplan.executors.reapi.command import command_for, platform_for, remote_reason
from crossplan.executors.reapi.settings import Endpoint, endpoint_for
from crossplan.executors.reapi.tree import DigestMap, InputTree, scan_tool
from crossplan.planner.actions import Action, Requirements, isa
from crossplan.planner.graph import NodeId
from crossplan.platforms import Platform
from crossplan.recipes.execution import ExecutionConfig

GO = "/home/u/.cache/crossplan/toolchains/go-1.27.3-ae9a8cfefeacb582/go"
ZIG = "/srv/venv/lib/python3.11/site-packages/ziglang"


def action(**kw: Any) -> Action:
    base: dict[str, Any] = dict(
        node=NodeId("s", "linux/arm64"), kind="command",
        commands=((f"{GO}/bin/go", "build", "-o", "out"),),
        env=(("GOROOT", f"{GO}"), ("PATH", "/usr/bin")), inputs=(), deps=(),
        outputs=("out",), requirements=Requirements("x86-64"), components={"toolchain": "go"},
        toolchain="go", tools=(GO,),
    )
    base.update(kw)
    return Action(**base)


@pytest.mark.parametrize(("kw", "reason"), [
    ({}, None),
    ({"kind": "image"}, "image steps are assembled locally"),
    ({"network": True}, "it uses the network (network = true)"),
    ({"known": False}, "its toolchain was not probed"),
    ({"tools": ("/root/.rustup/toolchains/stable",), "toolchain": "rust"}, "machine's own"),
    ({"tools": (), "toolchain": "rust"}, "machine's own"),  # /usr/bin/cargo
    ({"tools": (), "toolchain": ""}, None),  # a shell step: the worker's sh
    ({"tools": (GO, ZIG)}, None),
])
def test_which_actions_travel(kw: dict[str, Any], reason: str | None) -> None:
    got = remote_reason(action(**kw))
    assert got == reason if reason is None else (got is not None and reason in got)


def test_system_toolchains_travel_with_their_fingerprint_when_asked() -> None:
    a = action(tools=(), toolchain="rust", components={"toolchain": "rustc 1.63.0"})
    assert remote_reason(a, "remote") is None
    props = {p.name: p.value for p in platform_for(a, {}).properties}
    assert props["crossplan-toolchain"] == hashlib.sha256(b"rustc 1.63.0").hexdigest()[:32]
    other = dataclasses.replace(a, components={"toolchain": "rustc 1.95.0"})
    assert {p.name: p.value for p in platform_for(other, {}).properties}[
        "crossplan-toolchain"] != props["crossplan-toolchain"]
    assert "crossplan-toolchain" not in {p.name for p in platform_for(action(), {}).properties}


@pytest.mark.parametrize(("plat", "want"), [
    ("linux/amd64", "x86-64"), ("linux/arm64", "aarch64"), ("linux/riscv64", "riscv64"),
    ("linux/arm/v7", "armv7l"), ("linux/386", "x86-32"),
])
def test_isa_table(plat: str, want: str) -> None:
    assert isa(Platform.parse(plat)) == want


def test_platform_properties_sorted_with_per_isa_extras() -> None:
    a = action(requirements=Requirements("aarch64"))
    props = platform_for(a, {"aarch64": {"pool": "arm64-native"}, "x86-64": {"pool": "big"}})
    assert [(p.name, p.value) for p in props.properties] == [
        ("ISA", "aarch64"), ("OSFamily", "linux"), ("pool", "arm64-native")]


def test_command_binds_toolchains_where_the_local_sandbox_does() -> None:
    a = action(tools=(GO, ZIG), env=(("CC", f"{ZIG}/zig cc"), ("GOROOT", GO)))
    cmd = command_for(a)
    env = {e.name: e.value for e in cmd.environment_variables}
    assert env == {"CC": f"{ZIG}/zig cc", "GOROOT": GO}  # exactly the Action's
    script = cmd.arguments[2]
    assert cmd.arguments[:2] == ["/bin/sh", "-c"]
    assert f"-- {GO}/bin/go build -o out" in script
    assert f'--ro-bind "$R"/tools/go {GO}' in script
    assert f'--ro-bind "$R"/tools/ziglang {ZIG}' in script
    assert '--bind "$R"/work /crossplan/work' in script and "--unshare-net" in script
    assert list(cmd.output_paths) == ["work/out"]
    assert command_for(action()).SerializeToString() == command_for(action()).SerializeToString()


def test_input_tree_is_canonical_whatever_the_order() -> None:
    def build(order: list[tuple[str, bytes]]) -> str:
        t = InputTree()
        for path, data in order:
            t.add_bytes(path, data)
        t.add_link("work/link", "a")
        return t.build().hash

    files = [("work/a", b"1"), ("work/sub/b", b"2"), ("etc/passwd", b"3")]
    assert build(files) == build(list(reversed(files)))
    assert build(files) != build([("work/a", b"1"), ("work/sub/b", b"X"), ("etc/passwd", b"3")])


def test_tool_tree_scanned_once_and_remembered(tmp_path: Path) -> None:
    root = tmp_path / "go"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "go").write_bytes(b"#!binary")
    (root / "bin" / "go").chmod(0o755)
    (root / "VERSION").write_text("go1.27.3\n")
    (root / "lnk").symlink_to("VERSION")
    digests = DigestMap(tmp_path / "store")
    try:
        tree = scan_tool(str(root), tmp_path / "memo", digests)
        assert len(list((tmp_path / "memo").iterdir())) == 1
        blobs = {b.digest.hash for b in tree.blobs.values() if b.path}
        assert hashlib.sha256(b"#!binary").hexdigest() in blobs
        again = scan_tool(str(root), tmp_path / "memo", digests)
        assert again.digest == tree.digest
    finally:
        digests.close()


@pytest.mark.parametrize(("cfg", "opt", "env", "want"), [
    ({}, None, {}, None),
    ({"remote": "grpc://h:1"}, None, {}, None),  # configured, not chosen
    ({"remote": "grpc://h:1"}, "remote", {}, "grpc://h:1"),
    ({"remote": "grpc://h:1", "executor": "remote"}, None, {}, "grpc://h:1"),
    ({"remote": "grpc://h:1", "executor": "remote"}, "local", {}, None),
    ({}, None, {"CROSSPLAN_EXECUTOR": "remote", "CROSSPLAN_EXECUTION_REMOTE": "grpcs://e:443"},
     "grpcs://e:443"),
])
def test_endpoint_resolution(cfg: dict[str, Any], opt: str | None, env: dict[str, str],
                             want: str | None) -> None:
    ep = endpoint_for(ExecutionConfig(**cfg), opt, env)
    assert (ep.url if ep else None) == want


@pytest.mark.parametrize(("cfg", "opt", "env", "err", "text"), [
    ({}, "remote", {}, RecipeError, "needs an endpoint"),
    ({}, "cloud", {}, RecipeError, "unknown executor 'cloud'"),
    ({"remote": "h:1"}, "remote", {}, RecipeError, "not a grpc://"),
    ({"remote": "grpc://h:1", "headers": {"Authorization": "env:TOK"}}, "remote", {},
     EnvironmentProblem, "$TOK"),
])
def test_endpoint_errors(cfg: dict[str, Any], opt: str, env: dict[str, str],
                         err: type[Exception], text: str) -> None:
    with pytest.raises(err, match=None) as info:
        endpoint_for(ExecutionConfig(**cfg), opt, env)
    assert text in str(info.value)


def test_auth_headers_and_tls() -> None:
    ep = endpoint_for(ExecutionConfig(remote="grpcs://rbe.example:443", instance="ci",
                                      headers={"Authorization": "env:TOK"}), "remote",
                      {"TOK": "Bearer s3cret"})
    assert ep is not None and ep.tls and ep.target == "rbe.example:443"
    assert ep.headers == (("authorization", "Bearer s3cret"),) and ep.instance == "ci"


class _Err(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "connection refused"


def _flaky(failures: int, code: grpc.StatusCode) -> Callable[[], str]:
    left = [failures]

    def call() -> str:
        if left[0]:
            left[0] -= 1
            raise _Err(code)
        return "ok"

    return call


def test_retries_back_off_on_unavailable_then_give_up_clearly() -> None:
    slept: list[float] = []
    retry = Retrying(Endpoint("grpc://h:1", retries=4), sleep=slept.append)
    assert retry(_flaky(3, grpc.StatusCode.UNAVAILABLE)) == "ok"
    assert slept == [0.25, 0.5, 1.0]
    with pytest.raises(EnvironmentProblem) as info:
        retry(_flaky(9, grpc.StatusCode.UNAVAILABLE))
    assert "cannot reach the remote execution endpoint grpc://h:1" in str(info.value)
    with pytest.raises(grpc.RpcError):  # not retried: a real answer
        retry(_flaky(1, grpc.StatusCode.INVALID_ARGUMENT))
