"""GitLab CI: a default-branch job and a merge-request job over one template (``.gitlab-ci.yml``).

The jobs run in a Debian (trixie) Python image: Rust and every foreign target's std come
from Debian packages; Docker (for ``plan test``, QEMU and buildx) is a ``docker:dind``
service reached over ``DOCKER_HOST``.
"""

from __future__ import annotations

from typing import Any

from crossplan.ci import _yaml
from crossplan.ci.header import header
from crossplan.ci.needs import CACHE_ENV, CiOptions, Login, Needs
from crossplan.ci.shell import (
    apt_script,
    binfmt_command,
    docker_config_script,
    pip_command,
    rustup_script,
)

__all__ = ["DEFAULT_RULE", "MR_RULE", "PATH", "render"]

PATH = ".gitlab-ci.yml"
DEFAULT_RULE = "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"
MR_RULE = '$CI_PIPELINE_SOURCE == "merge_request_event"'
_GITLAB_REGISTRY = "registry.gitlab.com"
_DIND = "docker:28-dind"


def _login_vars(login: Login) -> Login:
    if login.host == _GITLAB_REGISTRY:
        return Login(login.host, "CI_REGISTRY_USER", "CI_REGISTRY_PASSWORD", login.why)
    return login


def _describe(login: Login) -> str:
    if login.host == _GITLAB_REGISTRY:
        return "the job's CI_REGISTRY_USER / CI_REGISTRY_PASSWORD"
    return f"CI/CD variables {login.username_var} and {login.password_var} (masked)"


def _template(needs: Needs, options: CiOptions) -> dict[str, Any]:
    job: dict[str, Any] = {"image": f"python:{options.python}-trixie"}
    if needs.docker:
        dind: dict[str, Any] = {"name": _DIND, "alias": "docker"}
        if needs.tests or needs.buildx:  # multi-platform images in the engine
            dind["command"] = ["--feature", "containerd-snapshotter=true"]
        job["services"] = [dind]
        job["variables"] = {"DOCKER_HOST": "tcp://docker:2375", "DOCKER_TLS_CERTDIR": ""}
    before: list[str] = [pip_command(needs)]
    cli: tuple[str, ...] = ("docker-cli",) if needs.qemu or needs.buildx else ()
    cli += ("docker-buildx",) if needs.buildx else ()
    if (apt := apt_script(needs, debian_rust=True, extra=cli)) is not None:
        before.append(apt)
    if (rustup := rustup_script(needs, with_gnu=False)) is not None:
        before.append(rustup)
    if needs.logins:
        before.append(docker_config_script(tuple(_login_vars(x) for x in needs.logins)))
    if needs.qemu:
        before.append(binfmt_command(needs))
    before += needs.toolchain_image_commands()
    job["before_script"] = before
    return job


def render(needs: Needs, options: CiOptions) -> str:
    tests = [cmd for _, cmd in needs.test_commands()]
    default_script = [needs.build_command(default_branch=True), *tests]
    if needs.push:
        default_script.append(needs.push_command())
    doc: dict[str, Any] = {
        "workflow": {"rules": [{"if": MR_RULE}, {"if": DEFAULT_RULE}]},
    }
    if needs.cache_remote:
        doc["variables"] = {CACHE_ENV: needs.cache_remote}
    doc[".crossplan"] = _template(needs, options)
    doc["crossplan:default-branch"] = {
        "extends": ".crossplan", "rules": [{"if": DEFAULT_RULE}], "script": default_script,
    }
    doc["crossplan:merge-request"] = {
        "extends": ".crossplan", "rules": [{"if": MR_RULE}],
        "script": [needs.build_command(default_branch=False), *tests],
    }
    lines = header("gitlab", needs, lambda x: _describe(_login_vars(x)), "merge requests")
    return _yaml.dump(doc, lines)
