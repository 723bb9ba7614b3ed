"""GitHub Actions: one job on ubuntu-24.04 (``.github/workflows/crossplan.yml``).

Ubuntu runners have rustup, so Rust targets come from ``rustup target add`` there; the gcc
cross linkers and compilers are Ubuntu packages of the runner's own architecture.
"""

from __future__ import annotations

from typing import Any

from crossplan.ci import _yaml
from crossplan.ci.header import header
from crossplan.ci.needs import CACHE_ENV, CiOptions, Login, Needs
from crossplan.ci.shell import apt_script, containerd_store_script, pip_command, rustup_script

__all__ = ["DEFAULT", "LOGIN", "OTHER", "PATH", "render"]

PATH = ".github/workflows/crossplan.yml"
DEFAULT = ("github.event_name != 'pull_request' && "
           "github.ref_name == github.event.repository.default_branch")
OTHER = ("github.event_name == 'pull_request' || "
         "github.ref_name != github.event.repository.default_branch")
LOGIN = "github.event_name != 'pull_request' || !github.event.pull_request.head.repo.fork"


def _credentials(login: Login) -> tuple[str, str]:
    if login.host == "ghcr.io":
        return "${{ github.actor }}", "${{ secrets.GITHUB_TOKEN }}"
    return (f"${{{{ secrets.{login.username_var} }}}}",
            f"${{{{ secrets.{login.password_var} }}}}")


def _describe(login: Login) -> str:
    if login.host == "ghcr.io":
        return "GITHUB_TOKEN (permissions: packages: write)"
    return f"secrets {login.username_var} and {login.password_var}"


def _services(needs: Needs) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, host in enumerate(needs.loopback):
        port = host.rsplit(":", 1)[1] if ":" in host.lstrip("[") else "80"
        name = "registry" if i == 0 else f"registry-{i + 1}"
        out[name] = {"image": "registry:2", "ports": [f"{port}:5000"]}
    return out


def _steps(needs: Needs, options: CiOptions) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = [
        {"uses": "actions/checkout@v4"},
        {"uses": "actions/setup-python@v5", "with": {"python-version": options.python}},
        {"name": "Install crossplan", "run": pip_command(needs)},
    ]
    if (apt := apt_script(needs, debian_rust=False)) is not None:
        steps.append({"name": "Install cross compilers", "run": apt})
    if (rustup := rustup_script(needs, with_gnu=True)) is not None:
        steps.append({"name": "Add Rust targets", "run": rustup})
    if needs.tests:
        steps.append({"name": "Use the containerd image store (plan test runs multi-platform "
                      "images)", "run": containerd_store_script()})
    if needs.qemu:
        steps.append({"name": f"Set up QEMU for {needs.qemu_why}",
                      "uses": "docker/setup-qemu-action@v3",
                      "with": {"platforms": ",".join(needs.qemu)}})
    if needs.buildx:
        steps.append({"name": "Set up buildx", "uses": "docker/setup-buildx-action@v3"})
    for cmd in needs.toolchain_image_commands():
        steps.append({"name": "Make toolchain image", "run": cmd})
    for login in needs.logins:
        user, password = _credentials(login)
        steps.append({"name": f"Log in to {login.host}", "if": LOGIN,
                      "uses": "docker/login-action@v3",
                      "with": {"registry": login.host, "username": user, "password": password}})
    steps.append({"name": "Build (default branch: reads and writes the remote cache)",
                  "if": DEFAULT, "run": needs.build_command(default_branch=True)})
    steps.append({"name": "Build (pull request: only reads the remote cache)",
                  "if": OTHER, "run": needs.build_command(default_branch=False)})
    for platform, cmd in needs.test_commands():
        steps.append({"name": f"Smoke test {platform}", "run": cmd})
    if needs.push:
        steps.append({"name": "Push the images", "if": DEFAULT, "run": needs.push_command()})
    return steps


def render(needs: Needs, options: CiOptions) -> str:
    permissions = {"contents": "read"}
    if any(login.host == "ghcr.io" for login in needs.logins):
        permissions["packages"] = "write"
    job: dict[str, Any] = {"name": "build, test and push", "runs-on": "ubuntu-24.04"}
    if services := _services(needs):
        job["services"] = services
    job["steps"] = _steps(needs, options)
    doc: dict[str, Any] = {
        "name": "crossplan",
        "on": {"push": {"branches": [options.default_branch]}, "pull_request": {},
               "workflow_dispatch": {}},
        "permissions": permissions,
        "concurrency": {"group": "crossplan-${{ github.ref }}",
                        "cancel-in-progress": "${{ github.event_name == 'pull_request' }}"},
    }
    if needs.cache_remote:
        doc["env"] = {CACHE_ENV: needs.cache_remote}
    doc["jobs"] = {"build": job}
    lines = header("github", needs, _describe)
    return _yaml.dump(doc, lines)
