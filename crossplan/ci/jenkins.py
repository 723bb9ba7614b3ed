"""Jenkins: a declarative ``Jenkinsfile`` for a multibranch pipeline on a Debian/Ubuntu agent.

crossplan goes into a venv in the workspace (``.venv/bin/plan``); registry credentials are
Jenkins "username with password" credentials bound by ``withCredentials``; Docker (for
``plan test``, QEMU and buildx) is the agent's. With ``--runners native``: parallel stages per
platform on agents labelled with the architecture (``amd64``, ``arm64``), digests passed
with ``stash``/``unstash`` to a final stage publishing the indexes.
"""

from __future__ import annotations

import re

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

__all__ = ["AGENT_LABELS", "PATH", "credentials_id", "groovy_string", "render", "render_native"]

PATH = "Jenkinsfile"
_VENV = ".venv/bin/"
AGENT_LABELS = {"amd64": "amd64", "arm64": "arm64"}  # Jenkins agent labels per architecture
_DOCKER_CONFIG = 'DOCKER_CONFIG = "${env.WORKSPACE}/.docker"'


def credentials_id(login: Login) -> str:
    return "registry-" + re.sub(r"[^a-z0-9]+", "-", login.host.lower()).strip("-")


def groovy_string(text: str) -> str:
    """A Groovy single-quoted literal (no ``$`` interpolation): ``'...'`` or ``'''...'''``."""
    body = text.replace("\\", "\\\\")
    if "\n" not in text.rstrip("\n"):
        return "'" + body.rstrip("\n").replace("'", "\\'") + "'"
    return "'''\\\n" + body.replace("'''", "\\'\\'\\'") + "'''"


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def line(self, text: str = "") -> None:
        self.lines.append(("  " * self.depth + text) if text else "")

    def open(self, text: str) -> None:
        self.line(text + " {")
        self.depth += 1

    def close(self) -> None:
        self.depth -= 1
        self.line("}")

    def sh(self, script: str) -> None:
        lit = groovy_string(script)
        first, *rest = lit.split("\n")
        self.line("sh " + first)
        self.lines += rest  # a multi-line literal's body is verbatim: no indentation added

    def stage(self, name: str, scripts: list[str], when: str | None = None,
              wrap: list[str] | None = None, after: tuple[str, ...] = (),
              before: tuple[str, ...] = (), agent: str | None = None) -> None:
        self.open(f"stage({groovy_string(name)})")
        if agent:
            self.line(f"agent {{ label {groovy_string(agent)} }}")
        if when:
            self.line(f"when {{ {when} }}")
        if agent:
            self.open("environment")
            self.line(_DOCKER_CONFIG)
            self.close()
        self.open("steps")
        for item in before:
            self.line(item)
        if wrap:
            self.line(wrap[0])
            self.depth += 1
            for item in wrap[1:]:
                self.line(item)
            self.depth -= 1
            self.open("])")
        for script in scripts:
            self.sh(script)
        if wrap:
            self.close()
        for item in after:
            self.line(item)
        self.close()
        self.close()


def _plan(cmd: str) -> str:
    return _VENV + cmd if cmd.startswith("plan ") else cmd


def _stages(w: _Writer, needs: Needs, options: CiOptions, branch: str, suffix: str = "",
            push: bool = True) -> None:
    pip = pip_command(needs, python=_VENV + "python")
    w.stage(f"Install crossplan{suffix}", [f"python3 -m venv .venv\n{pip}\n"])
    cli = ("docker-buildx",) if needs.buildx else ()
    if (apt := apt_script(needs, debian_rust=True, extra=cli)) is not None:
        w.stage(f"Cross toolchains{suffix}", [apt])
    if (rustup := rustup_script(needs, with_gnu=False)) is not None:
        w.stage(f"Rust targets{suffix}", [rustup])
    _login_stage(w, needs, suffix)
    if needs.qemu:
        w.stage(f"QEMU for {needs.qemu_why}{suffix}", [binfmt_command(needs)])
    for cmd in needs.toolchain_image_commands():
        w.stage(f"Toolchain image {cmd.split()[2]}{suffix}", [_plan(cmd)])
    w.stage(f"Build{suffix}", [_plan(needs.build_command(default_branch=True))], when=branch)
    w.stage(f"Build (read-only cache){suffix}",
            [_plan(needs.build_command(default_branch=False))], when=f"not {{ {branch} }}")
    for platform, cmd in needs.test_commands():
        w.stage(f"Smoke test {platform}", [_plan(cmd)])
    if needs.push and push:
        w.stage("Push the images", [_plan(needs.push_command())], when=branch)


def _login_stage(w: _Writer, needs: Needs, suffix: str) -> None:
    if needs.logins:
        w.stage(f"Registry login{suffix}", [docker_config_script(needs.logins)],
                wrap=_binds(needs))


def render(needs: Needs, options: CiOptions) -> str:
    branch = f"branch {groovy_string(options.default_branch)}"
    w = _Writer()
    notes = ("the agent needs Docker with the containerd image store "
             '({"features": {"containerd-snapshotter": true}}) for plan test',) \
        if needs.tests else ()
    lines = header("jenkins", needs, lambda x: f"credentials '{credentials_id(x)}' "
                   "(username with password)", "other branches and change requests", notes)
    w.lines += [f"// {h}" if h else "//" for h in lines]
    w.line()
    w.open("pipeline")
    w.line("agent any")
    w.open("environment")
    if needs.cache_remote:
        w.line(f"{CACHE_ENV} = {groovy_string(needs.cache_remote)}")
    w.line(_DOCKER_CONFIG)
    w.close()
    w.open("stages")
    _stages(w, needs, options, branch)
    w.close()
    w.close()
    return "\n".join(w.lines) + "\n"


def render_native(fan: Fanout, options: CiOptions) -> str:
    """A parallel stage per platform on an agent of its architecture, then the index."""
    n = fan.overall
    branch = f"branch {groovy_string(options.default_branch)}"
    w = _Writer()
    labels = ", ".join(f"{j.only}: label '{AGENT_LABELS[j.runner.arch]}'" for j in fan.jobs)
    notes = ("agents need Docker with the containerd image store "
             '({"features": {"containerd-snapshotter": true}}) for plan test',) \
        if n.tests else ()
    lines = header("jenkins", n, lambda x: f"credentials '{credentials_id(x)}' "
                   "(username with password)", "other branches and change requests", notes,
                   builds=f"Builds each platform natively on its own agent ({labels}).",
                   publish="each platform's images pushed by digest, then the "
                   "multi-platform indexes and tags")
    w.lines += [f"// {h}" if h else "//" for h in lines]
    w.line()
    w.open("pipeline")
    w.line("agent none")
    if n.cache_remote:
        w.open("environment")
        w.line(f"{CACHE_ENV} = {groovy_string(n.cache_remote)}")
        w.close()
    w.open("stages")
    w.open(f"stage({groovy_string('Build')})")
    w.open("parallel")
    for job in fan.jobs:
        assert job.only is not None
        suffix = f" {job.only}"
        w.open(f"stage({groovy_string(str(job.only))})")
        w.line(f"agent {{ label {groovy_string(AGENT_LABELS[job.runner.arch])} }}")
        w.open("environment")
        w.line(_DOCKER_CONFIG)
        w.close()
        w.open("stages")
        _stages(w, job, options, branch, suffix, push=False)
        if n.push:
            w.stage(f"Push {job.only} by digest",  # (agents reuse workspaces: no stale records)
                    [f"rm -rf {fan.digests}\n{_plan(job.publish_platform_command(fan.digests))}\n"],
                    when=branch,
                    after=(f"stash name: {groovy_string('digests-' + slug(job.only))}, "
                           f"includes: {groovy_string(fan.digests + '/**')}",))
        w.close()
        w.close()
    w.close()
    w.close()
    if n.push:
        pip = pip_command(n, python=_VENV + "python")
        unstash = tuple(f"unstash {groovy_string('digests-' + slug(j.only))}"
                        for j in fan.jobs if j.only is not None)
        login = [docker_config_script(n.logins)] if n.logins else []
        w.stage("Publish the indexes", [f"python3 -m venv .venv\n{pip}\n", *login,
                                        _plan(fan.publish_index_command())],
                when=branch, agent=AGENT_LABELS["amd64"],
                before=(f"sh {groovy_string('rm -rf ' + fan.digests)}", *unstash),
                wrap=_binds(n))
    w.close()
    w.close()
    return "\n".join(w.lines) + "\n"


def _binds(needs: Needs) -> list[str] | None:
    if not needs.logins:
        return None
    return ["withCredentials([", *[
        f"usernamePassword(credentialsId: {groovy_string(credentials_id(x))}, "
        f"usernameVariable: {groovy_string(x.username_var)}, "
        f"passwordVariable: {groovy_string(x.password_var)})," for x in needs.logins]]
