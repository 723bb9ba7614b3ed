"""The Docker engine through docker-py: reachability, image store, local images, load, run."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import docker
import docker.errors

from crossplan.errors import EnvironmentProblem
from crossplan.platforms import Platform

__all__ = ["Engine", "RunOutput", "docker_host"]

DEFAULT_HOST = "unix:///var/run/docker.sock"
_PROBE_CMD = ["/crossplan-probe"]  # never started: a created container only resolves the image


def docker_host(environ: Mapping[str, str] | None = None) -> str:
    """Where the engine is: ``DOCKER_HOST``, else the current docker context's endpoint."""
    env = os.environ if environ is None else environ
    if env.get("DOCKER_HOST"):
        return env["DOCKER_HOST"]
    try:
        out = subprocess.run(
            ["docker", "context", "inspect", "--format", "{{.Endpoints.docker.Host}}"],
            capture_output=True, text=True, timeout=10, check=False, env=dict(env),
        )
    except (OSError, subprocess.SubprocessError):
        return DEFAULT_HOST
    host = out.stdout.strip()
    return host if out.returncode == 0 and host else DEFAULT_HOST


@dataclass(frozen=True)
class RunOutput:
    exit_code: int
    output: str


class Engine:
    """One Docker engine. Every failure to reach it is an EnvironmentProblem (exit 3)."""

    def __init__(self, environ: Mapping[str, str] | None = None, *, timeout: int = 600) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.timeout = timeout

    @cached_property
    def host(self) -> str:
        return docker_host(self.environ)

    def unreachable(self, detail: str) -> EnvironmentProblem:
        return EnvironmentProblem(
            f"the Docker daemon at {self.host} is unreachable: {detail}",
            hint="start dockerd (CI: `scripts/ci-env.sh start`) or point DOCKER_HOST at a "
            'running engine; or build without Docker: backend = "oci" on the image step',
        )

    @cached_property
    def client(self) -> docker.DockerClient:
        env = {**self.environ, "DOCKER_HOST": self.host}
        try:
            client = docker.DockerClient.from_env(environment=env, timeout=self.timeout)
        except docker.errors.DockerException as exc:
            raise self.unreachable(_short(exc)) from None
        return client

    def ping(self, timeout: float | None = None) -> None:
        try:
            if timeout is not None:
                env = {**self.environ, "DOCKER_HOST": self.host}
                quick = docker.DockerClient.from_env(environment=env, timeout=int(timeout) or 1)
                try:
                    quick.ping()
                finally:
                    quick.close()
            else:
                self.client.ping()
        except EnvironmentProblem:
            raise
        except Exception as exc:  # docker-py raises requests/urllib3/OS errors as they come
            raise self.unreachable(_short(exc)) from None

    def reachable(self, timeout: float = 3) -> bool:
        try:
            self.ping(timeout)
        except EnvironmentProblem:
            return False
        return True

    def _call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except docker.errors.APIError:
            raise
        except docker.errors.DockerException as exc:
            raise self.unreachable(_short(exc)) from None
        except OSError as exc:
            raise self.unreachable(_short(exc)) from None
        except Exception as exc:  # requests.ConnectionError and friends
            if "Connection" in type(exc).__name__:
                raise self.unreachable(_short(exc)) from None
            raise

    def version(self) -> dict[str, Any]:
        return dict(self._call(self.client.version))

    def info(self) -> dict[str, Any]:
        return dict(self._call(self.client.info))

    def containerd_store(self) -> bool:
        """Does the engine use the containerd image store (multi-platform images locally)?"""
        status = self.info().get("DriverStatus") or []
        return any(
            len(kv) == 2 and kv[0] == "driver-type" and "containerd.snapshotter" in kv[1]
            for kv in status
        )

    def image_id(self, ref: str) -> str | None:
        """The local image's id (with the containerd store: its index digest), or None."""
        try:
            image = self._call(self.client.images.get, ref)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            if exc.status_code == 404:
                return None
            raise
        return str(image.id)

    def has_platform(self, ref: str, platform: Platform) -> bool:
        """Whether the local image has ``platform`` (a container is created, never started)."""
        try:
            created = self._call(
                self.client.api.create_container, ref, command=_PROBE_CMD, platform=str(platform)
            )
        except docker.errors.APIError as exc:
            if exc.status_code in (400, 404, 409) or "platform" in str(exc.explanation):
                return False
            raise
        self._call(self.client.api.remove_container, created["Id"], force=True)
        return True

    def load(self, archive: Path) -> list[str]:
        """``docker load`` an image archive (docker or OCI layout tar); the names it loaded."""
        with archive.open("rb") as f:
            try:
                images = self._call(self.client.images.load, f.read())
            except docker.errors.APIError as exc:
                raise EnvironmentProblem(
                    f"docker load {archive.name} failed: {exc.explanation}",
                    hint="a multi-platform image needs the containerd image store "
                    '({"features": {"containerd-snapshotter": true}} in daemon.json)',
                ) from None
        return [t for img in images for t in img.tags]

    def remove_image(self, ref: str) -> None:
        with contextlib.suppress(docker.errors.APIError):
            self._call(self.client.images.remove, ref, force=True)

    def run(
        self, ref: str, platform: Platform, command: Sequence[str] | None = None, *,
        entrypoint: Sequence[str] | None = None,
    ) -> RunOutput:
        """``docker run --rm --platform P [--entrypoint E] REF [COMMAND]``: exit code + output.
        Start failures (such as "exec format error") come back as exit code 255 with the
        daemon's message as output."""
        kw: dict[str, Any] = {"platform": str(platform)}
        if entrypoint is not None:
            kw["entrypoint"] = list(entrypoint)
        try:
            created = self._call(
                self.client.api.create_container, ref,
                command=list(command) if command is not None else None, **kw,
            )
        except docker.errors.APIError as exc:
            return RunOutput(125, str(exc.explanation or exc))
        cid = created["Id"]
        try:
            try:
                self._call(self.client.api.start, cid)
            except docker.errors.APIError as exc:
                return RunOutput(255, str(exc.explanation or exc))
            result = self._call(self.client.api.wait, cid, timeout=self.timeout)
            logs = self._call(self.client.api.logs, cid, stdout=True, stderr=True)
            return RunOutput(int(result.get("StatusCode", 1)), logs.decode(errors="replace"))
        finally:
            with contextlib.suppress(docker.errors.APIError):
                self._call(self.client.api.remove_container, cid, force=True)

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    for needle, meaning in (
        ("No such file or directory", "no such socket"),
        ("Connection refused", "connection refused"),
        ("Permission denied", "permission denied (join the docker group, or run as root)"),
        ("timed out", "timed out"),
    ):
        if needle in text:
            return meaning
    return text.splitlines()[0][:300]
