"""Integration fixtures, in one place: private registries (per test or per session) and the
Docker engine with buildx. Helpers stay importable as modules (registry_proc, buildx_env).
Fixtures unit tests need too (cache_dir, cli, make_project...) are in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from buildx_env import Plan, ensure_toolchain_images, make_plan_runner, require_engine
from registry_proc import RegistryProc


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProc]:
    """A private docker-registry for this test (``.address``, ``.stop()``, ``.tags()``...)."""
    reg = RegistryProc(tmp_path / "registry").start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def session_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a private registry shared by the session, stopped at its end."""
    reg = RegistryProc(tmp_path_factory.mktemp("registry")).start()
    try:
        yield reg.address
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def buildx_engine() -> None:
    """The CI engine (docker, buildx, the registry on 127.0.0.1:5000, the base image) and the
    Go and zig toolchain images: fails (never skips) with the fix when something is missing."""
    require_engine()
    ensure_toolchain_images()


@pytest.fixture
def plan(tmp_path: Path, buildx_engine: None) -> Plan:
    """``plan("run", ...)`` / ``plan.ok(...)``: the CLI against the engine, a private store."""
    return make_plan_runner(tmp_path)
