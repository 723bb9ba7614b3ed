"""Run the docker CLI's buildx plugin: argv for a build, logs, metadata, and its errors."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from crossplan.backends.buildx.binfmt import binfmt_fix
from crossplan.backends.buildx.caps import BuilderInfo, Capabilities, parse_inspect, parse_version
from crossplan.errors import EnvironmentProblem, StepFailed
from crossplan.platforms import Platform

__all__ = [
    "BuildRequest",
    "Buildx",
    "CommandRunner",
    "SubprocessRunner",
    "build_argv",
    "classify_failure",
    "read_metadata",
]

BUILDX_MISSING_HINT = (
    "install the buildx plugin: put the `docker-buildx` binary at "
    "/usr/libexec/docker/cli-plugins/docker-buildx (Debian: `apt-get install docker-buildx`; "
    "CI: `scripts/ci-env.sh install`), then check `docker buildx version`; or build without "
    'Docker: backend = "oci" on the image step'
)


class CommandRunner(Protocol):
    """Runs a docker CLI command; ``log`` receives its combined output when given."""

    def __call__(
        self, argv: Sequence[str], *, log: Path | None = None, echo: bool = False,
        timeout: float | None = None,
    ) -> tuple[int, str]: ...


class SubprocessRunner:
    """The real runner: streams output line by line to the log (and stderr with ``echo``).

    The child runs in its own process group so that a timeout or an error kills it and
    whatever it started (the docker CLI runs buildx as a child plugin that holds the pipe);
    the pipe and the log are closed and the child is reaped on every path."""

    def __init__(
        self, environ: Mapping[str, str] | None = None, *,
        popen: Callable[..., subprocess.Popen[str]] = subprocess.Popen,
    ) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.popen = popen

    def __call__(
        self, argv: Sequence[str], *, log: Path | None = None, echo: bool = False,
        timeout: float | None = None,
    ) -> tuple[int, str]:
        chunks: list[str] = []
        with contextlib.ExitStack() as stack:
            sink = stack.enter_context(log.open("a")) if log is not None else None
            if sink is not None:
                sink.write("$ " + " ".join(argv) + "\n")
                sink.flush()
            try:
                proc = stack.enter_context(self.popen(
                    list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, env=self.environ, text=True, errors="replace",
                    process_group=0,
                ))
            except FileNotFoundError:
                raise EnvironmentProblem(
                    f"program not found: {argv[0]}",
                    hint="install the Docker CLI (`docker`) and put it on PATH",
                ) from None
            # Exits run in reverse: kill (if still running), then Popen.__exit__ closes
            # the pipe and waits, then the log is closed.
            stack.callback(_kill, proc)
            timed_out = threading.Event()
            if timeout is not None:
                timer = threading.Timer(timeout, _expire, (proc, timed_out))
                timer.daemon = True
                timer.start()
                stack.callback(timer.cancel)
            assert proc.stdout is not None
            for line in proc.stdout:
                chunks.append(line)
                if sink is not None:
                    sink.write(line)
                    sink.flush()
                if echo:
                    sys.stderr.write(line)
            code = proc.wait()
            if timed_out.is_set():
                if sink is not None:
                    sink.write(f"# killed after {timeout}s\n")
                raise EnvironmentProblem(
                    f"`{' '.join(argv[:4])}` did not finish within {timeout}s and was killed",
                    hint="check the Docker engine (`docker info`, `docker buildx ls`)"
                    + (f"; output: {log}" if log is not None else ""),
                )
            if sink is not None:
                sink.write(f"# exit {code}\n")
        return code, "".join(chunks)


def _kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the child's process group if the child is still running (no-op otherwise)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


def _expire(proc: subprocess.Popen[str], flag: threading.Event) -> None:
    if proc.poll() is None:
        flag.set()
        _kill(proc)


@dataclass(frozen=True)
class BuildRequest:
    """One ``docker buildx build``. ``output`` is the ``--output`` value (or ``load``)."""

    context: Path
    platforms: tuple[Platform, ...]
    output: str
    metadata_file: Path
    dockerfile: Path | None = None
    tags: tuple[str, ...] = ()
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    build_args: Mapping[str, str] = field(default_factory=dict)
    builder: str | None = None
    progress: str = "plain"


def build_argv(req: BuildRequest, docker: str = "docker") -> list[str]:
    """The exact command line (pure): provenance off so indexes hold only our platforms."""
    argv = [docker, "buildx", "build", "--progress", req.progress, "--provenance=false"]
    if req.builder:
        argv += ["--builder", req.builder]
    argv += ["--platform", ",".join(str(p) for p in req.platforms)]
    if req.dockerfile is not None:
        argv += ["--file", str(req.dockerfile)]
    for k, v in sorted(req.build_args.items()):
        argv += ["--build-arg", f"{k}={v}"]
    for t in req.tags:
        argv += ["--tag", t]
    argv += ["--load"] if req.output == "load" else ["--output", req.output]
    for c in req.cache_from:
        argv += ["--cache-from", c]
    for c in req.cache_to:
        argv += ["--cache-to", c]
    argv += ["--metadata-file", str(req.metadata_file), str(req.context)]
    return argv


def read_metadata(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


_PLATFORM_IN_LOG = re.compile(r"\[(linux/[a-z0-9]+(?:/v\d)?)\s")


def classify_failure(
    output: str, *, step: str, log: Path | None, platforms: Sequence[Platform] = ()
) -> Exception:
    """Turn a failed buildx run into the right error: environment (exit 3) or step (exit 1)."""
    tail = "\n".join(output.strip().splitlines()[-25:])
    where = f"full log: {log}" if log else None
    if "is not a docker command" in output or "unknown command: docker buildx" in output:
        return EnvironmentProblem("docker buildx is not installed", step=step,
                                  hint=BUILDX_MISSING_HINT)
    if "Cannot connect to the Docker daemon" in output or "error during connect" in output:
        return EnvironmentProblem(
            "the Docker daemon is unreachable", step=step,
            hint="start dockerd or point DOCKER_HOST at a running engine",
        )
    if "Multi-platform build is not supported" in output:
        return EnvironmentProblem(
            "this builder cannot build several platforms at once", step=step,
            hint='set [buildx] strategy = "per-platform", enable the containerd image store, '
            "or use a docker-container builder",
        )
    if "exec format error" in output:
        bad = sorted({m for m in _PLATFORM_IN_LOG.findall(output)})
        plats = [Platform.parse(b) for b in bad] or list(platforms)
        return EnvironmentProblem(
            "a RUN step executed on an emulated platform failed with 'exec format error' "
            f"({', '.join(str(p) for p in plats) or 'unknown platform'}): QEMU binfmt is missing",
            step=step, hint=binfmt_fix(plats),
        )
    if re.search(r"no match for platform in manifest|does not provide the specified platform",
                 output):
        return EnvironmentProblem(
            "the base image lacks a target platform", step=step,
            hint="pick a multi-platform base, or drop the platform; " + (where or ""),
        )
    return StepFailed("docker buildx build failed", step=step, log_tail=tail, hint=where)


class Buildx:
    """The buildx plugin of the docker CLI, behind an injectable runner."""

    def __init__(self, runner: CommandRunner | None = None, docker: str = "docker") -> None:
        self.runner: CommandRunner = runner or SubprocessRunner()
        self.docker = docker

    def version(self) -> str:
        code, out = self.runner([self.docker, "buildx", "version"], timeout=60)
        if code != 0:
            if "Cannot connect" in out:
                raise EnvironmentProblem("the Docker daemon is unreachable", hint=out.strip())
            raise EnvironmentProblem(
                "docker buildx is not installed" + (f": {out.strip()}" if out.strip() else ""),
                hint=BUILDX_MISSING_HINT,
            )
        return parse_version(out)

    def inspect(self, builder: str | None = None) -> BuilderInfo:
        argv = [self.docker, "buildx", "inspect", "--bootstrap"]
        if builder:
            argv.append(builder)
        code, out = self.runner(argv, timeout=120)
        if code != 0:
            raise EnvironmentProblem(
                f"docker buildx inspect failed: {out.strip()[-300:]}",
                hint="check the builder with `docker buildx ls`; `docker buildx use default`",
            )
        return parse_inspect(out)

    def capabilities(self, containerd_store: bool, builder: str | None = None) -> Capabilities:
        version = self.version()
        info = self.inspect(builder)
        return Capabilities(version, info, containerd_store, info.platforms)

    def build(
        self, req: BuildRequest, *, step: str, log: Path, echo: bool = False
    ) -> dict[str, Any]:
        """Run the build; returns the metadata file's content. Raises on failure."""
        req.metadata_file.unlink(missing_ok=True)
        code, out = self.runner(build_argv(req, self.docker), log=log, echo=echo)
        if code != 0:
            raise classify_failure(out, step=step, log=log, platforms=req.platforms)
        return read_metadata(req.metadata_file)

    def imagetools_create(
        self, tags: Sequence[str], sources: Sequence[str], *, step: str, log: Path,
        echo: bool = False,
    ) -> None:
        argv = [self.docker, "buildx", "imagetools", "create", "--progress", "plain"]
        for t in tags:
            argv += ["--tag", t]
        code, out = self.runner([*argv, *sources], log=log, echo=echo)
        if code != 0:
            raise classify_failure(out, step=step, log=log)

    def prune_all(self) -> None:
        self.runner([self.docker, "buildx", "prune", "-af"], timeout=600)
