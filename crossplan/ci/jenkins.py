"""Jenkins: a declarative ``Jenkinsfile`` for a multibranch pipeline on a Debian/Ubuntu agent.

crossplan goes into a venv in the workspace (``.venv/bin/plan``); registry credentials are
Jenkins "username with password" credentials bound by ``withCredentials``; Docker (for
``plan test``, QEMU and buildx) is the agent's.
"""

from __future__ import annotations

import re

from crossplan.ci.header import header
from crossplan.ci.needs import CACHE_ENV, CiOptions, Login, Needs
from crossplan.ci.shell import (
    apt_script,
    binfmt_command,
    docker_config_script,
    pip_command,
    rustup_script,
)

__all__ = ["PATH", "credentials_id", "groovy_string", "render"]

PATH = "Jenkinsfile"
_VENV = ".venv/bin/"


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
              wrap: list[str] | None = None) -> None:
        self.open(f"stage({groovy_string(name)})")
        if when:
            self.line(f"when {{ {when} }}")
        self.open("steps")
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
        self.close()
        self.close()


def _plan(cmd: str) -> str:
    return _VENV + cmd if cmd.startswith("plan ") else cmd


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
    w.line('DOCKER_CONFIG = "${env.WORKSPACE}/.docker"')
    w.close()
    w.open("stages")
    pip = pip_command(needs, python=_VENV + "python")
    w.stage("Install crossplan", [f"python3 -m venv .venv\n{pip}\n"])
    cli = ("docker-buildx",) if needs.buildx else ()
    if (apt := apt_script(needs, debian_rust=True, extra=cli)) is not None:
        w.stage("Cross toolchains", [apt])
    if (rustup := rustup_script(needs, with_gnu=False)) is not None:
        w.stage("Rust targets", [rustup])
    if needs.logins:
        binds = [f"usernamePassword(credentialsId: {groovy_string(credentials_id(x))}, "
                 f"usernameVariable: {groovy_string(x.username_var)}, "
                 f"passwordVariable: {groovy_string(x.password_var)})," for x in needs.logins]
        w.stage("Registry login", [docker_config_script(needs.logins)],
                wrap=["withCredentials([", *binds])
    if needs.qemu:
        w.stage(f"QEMU for {needs.qemu_why}", [binfmt_command(needs)])
    for cmd in needs.toolchain_image_commands():
        w.stage(f"Toolchain image {cmd.split()[2]}", [_plan(cmd)])
    w.stage("Build", [_plan(needs.build_command(default_branch=True))], when=branch)
    w.stage("Build (read-only cache)", [_plan(needs.build_command(default_branch=False))],
            when=f"not {{ {branch} }}")
    for platform, cmd in needs.test_commands():
        w.stage(f"Smoke test {platform}", [_plan(cmd)])
    if needs.push:
        w.stage("Push the images", [_plan(needs.push_command())], when=branch)
    w.close()
    w.close()
    return "\n".join(w.lines) + "\n"
