"""Run the `plan ...` commands of generated GitHub and GitLab pipelines locally, as CI would:
from the root of a git repository whose plan lives in a subdirectory (`plan ci --write`
puts the pipelines there), the pipeline's own env/variables, CI-like variables deciding
which `if:`/`rules:` hold, a fresh store per "runner", and a real loopback registry for
images and the remote cache.

examples/shell needs no toolchain; its image is tagged into the test registry, so the
pipelines derive their remote cache (`<repo>-plan-cache`) from that tag too."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from ci_pipeline import bash_n, github_scripts, gitlab_scripts, make_git_repo, plan_lines
from registry_proc import RegistryProc
from release_env import shell_copy
from testkit import Cli

pytestmark = pytest.mark.integration

REPO = "demo/shell"
CACHE = f"{REPO}-plan-cache"


PLAN = "services/shell/plan.toml"
WRITTEN = {"github": ".github/workflows/crossplan.yml", "gitlab": ".gitlab-ci.yml"}


def pipeline(cli: Cli, system: str, project: Path, *extra: str) -> dict[str, Any]:
    """`plan ci SYSTEM -f PROJECT --write`: the file at the git root, parsed."""
    res = cli("ci", system, "-f", project, "--write", "--json", "--install", "./", *extra)
    assert res.code == 0, res.stderr
    root = Path(res.json()["root"])
    assert res.json()["written"] == str(root / WRITTEN[system])
    doc: dict[str, Any] = yaml.safe_load((root / WRITTEN[system]).read_text())
    return doc


def run_commands(lines: list[str], project: Path, cli_env: Mapping[str, str],
                 env: Mapping[str, str], store: Path) -> list[str]:
    """Run each line with bash in ``project`` (the checkout's root), `plan` on PATH; all
    succeed."""
    assert lines
    full = {**cli_env, **env, "CROSSPLAN_CACHE_DIR": str(store),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{cli_env.get('PATH', '')}"}
    outputs = []
    for line in lines:
        bash_n(line)
        proc = subprocess.run(["bash", "-c", line], cwd=project, env=full, capture_output=True,
                              text=True, timeout=300, check=False)
        assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
        outputs.append(proc.stdout)
    return outputs


def tags(reg: RegistryProc, repo: str) -> list[str]:
    return reg.tags(repo)


def digest(reg: RegistryProc, tag: str) -> str:
    resp = httpx.head(f"http://{reg.address}/v2/{REPO}/manifests/{tag}", timeout=30, headers={
        "Accept": "application/vnd.oci.image.index.v1+json"})
    assert resp.status_code == 200
    return resp.headers["docker-content-digest"]


def test_github_and_gitlab_pipelines_run_locally(
    cli: Cli, cli_env: dict[str, str], registry: RegistryProc, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    shell_copy(root / "services" / "shell", f"{registry.address}/{REPO}:1.0")
    project = make_git_repo(root)  # commands run from the root, as CI runs them
    gh = pipeline(cli, "github", root / "services" / "shell")
    gl = pipeline(cli, "gitlab", root / "services" / "shell")
    assert gh["env"] == {"CROSSPLAN_CACHE_REMOTE": f"{registry.address}/{CACHE}"}
    assert gl["variables"] == gh["env"]

    # GitHub, push to the default branch: build (writing the cache), push the image.
    ctx = {"github.event_name": "push", "github.ref_name": "main",
           "github.event.repository.default_branch": "main"}
    env = {**gh["env"], "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push",
           "GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main"}
    lines = plan_lines(github_scripts(gh, ctx))
    assert lines == [f'plan run {PLAN} --cache-remote "$CROSSPLAN_CACHE_REMOTE"',
                     f'plan run {PLAN} --push --cache-remote "$CROSSPLAN_CACHE_REMOTE"']
    out = run_commands(lines, project, cli_env, env, tmp_path / "gh-main")
    assert "5 built" in out[0] and "tags written: 1.0" in out[1]
    cache_tags = tags(registry, CACHE)
    released_tags = [t for t in tags(registry, REPO) if not t.startswith("sha256-")]
    assert len(cache_tags) == 5 and released_tags == ["1.0"]  # sha256-*: its attestations
    released = digest(registry, "1.0")

    # GitHub, a pull request on a fresh runner: everything comes from the remote cache.
    ctx = {"github.event_name": "pull_request", "github.ref_name": "3/merge",
           "github.event.repository.default_branch": "main"}
    env = {**env, "GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/3/merge",
           "GITHUB_REF_NAME": "3/merge", "GITHUB_BASE_REF": "main"}
    lines = plan_lines(github_scripts(gh, ctx))
    assert lines == [f'plan run {PLAN} --cache-mode read --cache-remote "$CROSSPLAN_CACHE_REMOTE"']
    out = run_commands(lines, project, cli_env, env, tmp_path / "gh-pr")
    assert "5 substituted" in out[0]

    # GitLab, a merge request that changes an input: built locally, nothing pushed.
    (root / "services" / "shell" / "words" / "list.txt").write_text("one\ntwo\nthree\nfour\n")
    variables = {**gl["variables"], "CI": "true", "GITLAB_CI": "true",
                 "CI_PIPELINE_SOURCE": "merge_request_event", "CI_DEFAULT_BRANCH": "main",
                 "CI_MERGE_REQUEST_IID": "4"}
    scripts = gitlab_scripts(gl, variables)
    assert {job for job, _ in scripts} == {"crossplan:merge-request"}
    lines = plan_lines(scripts)
    out = run_commands(lines, project, cli_env, variables, tmp_path / "gl-mr")
    assert "built" in out[0] and "substituted" in out[0]  # gen came from the cache
    assert tags(registry, CACHE) == cache_tags and digest(registry, "1.0") == released

    # GitLab, the merge lands on the default branch: new cache entries, a new 1.0.
    variables = {**gl["variables"], "CI": "true", "GITLAB_CI": "true",
                 "CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main",
                 "CI_DEFAULT_BRANCH": "main"}
    scripts = gitlab_scripts(gl, variables)
    assert {job for job, _ in scripts} == {"crossplan:default-branch"}
    out = run_commands(plan_lines(scripts), project, cli_env, variables, tmp_path / "gl-main")
    assert len(tags(registry, CACHE)) > len(cache_tags)
    assert digest(registry, "1.0") != released
