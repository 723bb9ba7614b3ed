"""GitLab CI: a default-branch job and a merge-request job over one template (``.gitlab-ci.yml``).

The jobs run in a Debian (trixie) Python image: Rust and every foreign target's std come
from Debian packages; Docker (for ``plan test``, QEMU and buildx) is a ``docker:dind``
service reached over ``DOCKER_HOST``. With ``--runners native``: per platform a template and
its two jobs on a runner with that platform's tag (GitLab.com's hosted
``saas-linux-small-amd64`` / ``saas-linux-small-arm64``), the digests passed as artifacts to
a ``publish`` job.
"""

from __future__ import annotations

from typing import Any

from crossplan.ci import _yaml
from crossplan.ci.fanout import Fanout, slug
from crossplan.ci.header import header
from crossplan.ci.needs import CACHE_ENV, CiOptions, Login, Needs
from crossplan.ci.shell import (
    apt_script,
    binfmt_command,
    docker_config_script,
    pip_command,
    rustup_script,
)

__all__ = ["DEFAULT_RULE", "MR_RULE", "PATH", "RUNNER_TAGS", "render", "render_native"]

PATH = ".gitlab-ci.yml"
DEFAULT_RULE = "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"
MR_RULE = '$CI_PIPELINE_SOURCE == "merge_request_event"'
_GITLAB_REGISTRY = "registry.gitlab.com"
_DIND = "docker:28-dind"
RUNNER_TAGS = {"amd64": "saas-linux-small-amd64", "arm64": "saas-linux-small-arm64"}


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


def _login_script(needs: Needs) -> list[str]:
    if not needs.logins:
        return []
    return [docker_config_script(tuple(_login_vars(x) for x in needs.logins))]


def render_native(fan: Fanout, options: CiOptions) -> str:
    """Per platform: a template on a runner of that architecture, a default-branch job
    (build, test, push by digest, digests as artifacts) and a merge-request job; then
    ``publish`` (default branch) assembling the indexes."""
    n = fan.overall
    doc: dict[str, Any] = {
        "workflow": {"rules": [{"if": MR_RULE}, {"if": DEFAULT_RULE}]},
        "stages": ["build", "publish"],
    }
    if n.cache_remote:
        doc["variables"] = {CACHE_ENV: n.cache_remote}
    default_jobs = []
    for job in fan.jobs:
        plat = job.only
        assert plat is not None
        name = slug(plat)
        template = {"stage": "build", "tags": [RUNNER_TAGS[job.runner.arch]],
                    **_template(job, options)}
        doc[f".crossplan-{name}"] = template
        tests = [cmd for _, cmd in job.test_commands()]
        default: dict[str, Any] = {
            "extends": f".crossplan-{name}", "rules": [{"if": DEFAULT_RULE}],
            "script": [job.build_command(default_branch=True), *tests]}
        if n.push:
            default["script"].append(job.publish_platform_command(fan.digests))
            default["artifacts"] = {"paths": [f"{fan.digests}/"], "expire_in": "1 day"}
        doc[f"build:{name}"] = default
        default_jobs.append(f"build:{name}")
        doc[f"build:{name}:merge-request"] = {
            "extends": f".crossplan-{name}", "rules": [{"if": MR_RULE}],
            "script": [job.build_command(default_branch=False), *tests]}
    if n.push:
        doc["publish"] = {
            "stage": "publish", "image": f"python:{options.python}-trixie",
            "tags": [RUNNER_TAGS["amd64"]], "rules": [{"if": DEFAULT_RULE}],
            "needs": [{"job": j, "artifacts": True} for j in default_jobs],
            "before_script": [pip_command(n), *_login_script(n)],
            "script": [fan.publish_index_command()],
        }
    runners = ", ".join(f"{j.only}: tag {RUNNER_TAGS[j.runner.arch]}" for j in fan.jobs)
    lines = header("gitlab", n, lambda x: _describe(_login_vars(x)), "merge requests",
                   builds=f"Builds each platform natively on its own runner ({runners}).",
                   publish="each platform's images pushed by digest, then the "
                   "multi-platform indexes and tags (job publish)")
    return _yaml.dump(doc, lines)


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
