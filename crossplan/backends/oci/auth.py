"""Registry credentials from docker config (auths, credHelpers, credsStore) and challenges."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossplan.backends.oci.reference import DOCKER_HUB
from crossplan.errors import EnvironmentProblem

__all__ = ["Credentials", "Runner", "docker_config_path", "load_credentials", "parse_challenge"]

Runner = Callable[..., "subprocess.CompletedProcess[str]"]
_HUB_SERVER = "https://index.docker.io/v1/"
_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')


@dataclass(frozen=True)
class Credentials:
    """Username/password, or an identity (refresh) token when username is ``<token>``."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="..."`` -> ("bearer", {"realm": ..., "service": ...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) or m.group(3) or "" for m in _PARAM.finditer(rest)}
    return scheme.lower(), params


def docker_config_path() -> Path:
    """``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``."""
    root = os.environ.get("DOCKER_CONFIG")
    return Path(root) / "config.json" if root else Path.home() / ".docker" / "config.json"


def load_credentials(
    registry: str, *, config_path: Path | None = None, run: Runner = subprocess.run
) -> Credentials | None:
    """Credentials for ``registry`` the way docker finds them, or None (anonymous).

    Order: ``credHelpers[registry]``, then an ``auths`` entry with ``auth``/``identitytoken``,
    then ``credsStore``. Helpers run as ``docker-credential-<name> get``.
    """
    path = config_path or docker_config_path()
    try:
        config: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise EnvironmentProblem(
            f"cannot read {path}: {exc}", hint="fix or remove the file"
        ) from None
    helper = _matching(config.get("credHelpers") or {}, registry)
    if isinstance(helper, str) and helper:
        return _from_helper(helper, registry, run)
    entry = _matching(config.get("auths") or {}, registry)
    if isinstance(entry, dict) and (entry.get("auth") or entry.get("identitytoken")):
        return _from_auths(entry, registry, path)
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        return _from_helper(store, registry, run)
    return None


def _host(key: str) -> str:
    host = key.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    return DOCKER_HUB if host in ("index.docker.io", "registry-1.docker.io") else host


def _matching(table: dict[str, Any], registry: str) -> Any:
    for key, value in table.items():
        if _host(key) == registry:
            return value
    return None


def _from_auths(entry: dict[str, Any], registry: str, path: Path) -> Credentials:
    if entry.get("identitytoken"):
        return Credentials(identity_token=str(entry["identitytoken"]))
    try:
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise EnvironmentProblem(
            f"{path}: the 'auth' entry for {registry} is not base64 of 'user:password'",
            hint=f"run `docker login {registry}` again",
        ) from None
    return Credentials(user, password)


def _from_helper(name: str, registry: str, run: Runner) -> Credentials | None:
    server = _HUB_SERVER if registry == DOCKER_HUB else registry
    program = f"docker-credential-{name}"
    try:
        proc = run([program, "get"], input=server, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise EnvironmentProblem(
            f"credential helper {program} (configured for {registry}) is not installed",
            hint=f"install it, or remove it from {docker_config_path()}",
        ) from None
    if proc.returncode != 0:
        if "not found" in (proc.stdout + proc.stderr).lower():
            return None
        raise EnvironmentProblem(
            f"{program} get failed for {registry}: {proc.stderr.strip() or proc.stdout.strip()}",
            hint=f"run `docker login {registry}`",
        )
    data = json.loads(proc.stdout)
    user, secret = str(data.get("Username", "")), str(data.get("Secret", ""))
    if user == "<token>":
        return Credentials(identity_token=secret)
    return Credentials(user, secret)
