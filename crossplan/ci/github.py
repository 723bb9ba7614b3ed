"""GitHub Actions (``.github/workflows/crossplan.yml`` at the repository root): one job on
ubuntu-24.04, or with ``--runners native`` one job per platform (arm64 on ubuntu-24.04-arm)
and a job publishing the multi-platform index from their digests (uploaded as artifacts).

Ubuntu runners have rustup, so Rust targets come from ``rustup target add`` there; the gcc
cross linkers and compilers are Ubuntu packages of the runner's own architecture.
"""

from __future__ import annotations

from typing import Any

from crossplan.ci import _yaml
from crossplan.ci.fanout import Fanout, slug
from crossplan.ci.header import header
from crossplan.ci.needs import CACHE_ENV, CiOptions, Login, Needs
from crossplan.ci.shell import apt_script, containerd_store_script, pip_command, rustup_script
from crossplan.platforms import Platform

__all__ = ["DEFAULT", "LOGIN", "OTHER", "PATH", "RUNS_ON", "render", "render_native"]

PATH = ".github/workflows/crossplan.yml"
RUNS_ON = {"amd64": "ubuntu-24.04", "arm64": "ubuntu-24.04-arm"}  # GitHub-hosted runners
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


def _install(needs: Needs, options: CiOptions) -> list[dict[str, Any]]:
    return [
        {"uses": "actions/checkout@v4"},
        {"uses": "actions/setup-python@v5", "with": {"python-version": options.python}},
        {"name": "Install crossplan", "run": pip_command(needs)},
    ]


def _logins(needs: Needs) -> list[dict[str, Any]]:
    steps = []
    for login in needs.logins:
        user, password = _credentials(login)
        steps.append({"name": f"Log in to {login.host}", "if": LOGIN,
                      "uses": "docker/login-action@v3",
                      "with": {"registry": login.host, "username": user, "password": password}})
    return steps


def _steps(needs: Needs, options: CiOptions) -> list[dict[str, Any]]:
    steps = _install(needs, options)
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
    steps += _logins(needs)
    steps.append({"name": "Build (default branch: reads and writes the remote cache)",
                  "if": DEFAULT, "run": needs.build_command(default_branch=True)})
    steps.append({"name": "Build (pull request: only reads the remote cache)",
                  "if": OTHER, "run": needs.build_command(default_branch=False)})
    for platform, cmd in needs.test_commands():
        steps.append({"name": f"Smoke test {platform}", "run": cmd})
    if needs.push and needs.only is None:
        steps.append({"name": "Push the images", "if": DEFAULT, "run": needs.push_command()})
    return steps


def _document(needs: Needs, options: CiOptions, jobs: dict[str, Any]) -> dict[str, Any]:
    permissions = {"contents": "read"}
    if any(login.host == "ghcr.io" for login in needs.logins):
        permissions["packages"] = "write"
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
    doc["jobs"] = jobs
    return doc


def render(needs: Needs, options: CiOptions) -> str:
    job: dict[str, Any] = {"name": "build, test and push", "runs-on": RUNS_ON["amd64"]}
    if services := _services(needs):
        job["services"] = services
    job["steps"] = _steps(needs, options)
    lines = header("github", needs, _describe)
    return _yaml.dump(_document(needs, options, {"build": job}), lines)


def _runs_on(runner: Platform) -> str:
    return RUNS_ON[runner.arch]


def render_native(fan: Fanout, options: CiOptions) -> str:
    """One job per platform on its own runner, then ``publish`` (default branch only)."""
    n = fan.overall
    jobs: dict[str, Any] = {}
    for job_needs in fan.jobs:
        plat = job_needs.only
        assert plat is not None
        job: dict[str, Any] = {"name": f"build and test {plat}", "runs-on": _runs_on(
            job_needs.runner)}
        if services := _services(job_needs):
            job["services"] = services
        steps = _steps(job_needs, options)
        if n.push:
            steps.append({"name": f"Push the {plat} images by digest", "if": DEFAULT,
                          "run": job_needs.publish_platform_command(fan.digests)})
            steps.append({"name": "Upload the digests", "if": DEFAULT,
                          "uses": "actions/upload-artifact@v4",
                          "with": {"name": f"crossplan-digests-{slug(plat)}",
                                   "path": f"{fan.digests}/", "if-no-files-found": "error",
                                   "retention-days": 1}})
        job["steps"] = steps
        jobs[f"build-{slug(plat)}"] = job
    if n.push:
        publish: dict[str, Any] = {
            "name": "publish the multi-platform images", "needs": list(jobs), "if": DEFAULT,
            "runs-on": RUNS_ON["amd64"]}
        if services := _services(n):
            publish["services"] = services
        publish["steps"] = [
            *_install(n, options),
            *_logins(n),
            {"name": "Download the digests", "uses": "actions/download-artifact@v4",
             "with": {"pattern": "crossplan-digests-*", "merge-multiple": True,
                      "path": f"{fan.digests}/"}},
            {"name": "Publish the indexes and tags", "run": fan.publish_index_command()},
        ]
        jobs["publish"] = publish
    runners = ", ".join(f"{j.only}: {_runs_on(j.runner)}" for j in fan.jobs)
    lines = header("github", n, _describe,
                   builds=f"Builds each platform natively on its own runner ({runners}).",
                   publish="each platform's images pushed by digest, then the "
                   "multi-platform indexes and tags (job publish)")
    return _yaml.dump(_document(n, options, jobs), lines)
