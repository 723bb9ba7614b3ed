"""The native-runner fan-out, run locally as CI would run it: `plan ci github --runners
native --write` in a git repository whose plan lives in a subdirectory; the workflow passes
both validators; each per-platform job's commands run from the root of its own clone with
its own store ("runner"), pushing by digest to the loopback registry on 127.0.0.1:5000
(the shared remote cache ties them together); their digest records are gathered as the
artifact download would, and the publish job's command assembles the index: both platforms,
every tag, and byte for byte the index a single-runner build makes."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from ci_pipeline import (
    actionlint,
    check_jsonschema,
    github_job_scripts,
    gitlab_scripts,
    make_git_repo,
    parse_jenkinsfile,
    plan_lines,
)
from release_env import ACCEPT, shell_copy
from test_ci_pipeline_run import run_commands
from testkit import Cli

pytestmark = pytest.mark.integration

ADDRESS = "127.0.0.1:5000"  # scripts/ci-env.sh start
DIGESTS = ".crossplan/digests"
GH_MAIN = {"github.event_name": "push", "github.ref_name": "main",
           "github.event.repository.default_branch": "main"}
GL_MAIN = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main"}


@pytest.fixture
def loopback_registry() -> str:
    try:
        ok = httpx.get(f"http://{ADDRESS}/v2/", timeout=5).status_code == 200
    except httpx.HTTPError:
        ok = False
    if not ok:
        pytest.fail(f"no registry on {ADDRESS}: run `scripts/ci-env.sh start`")
    return ADDRESS


def manifest(repo: str, ref: str) -> tuple[dict[str, Any], str]:
    resp = httpx.get(f"http://{ADDRESS}/v2/{repo}/manifests/{ref}", timeout=30,
                     headers={"Accept": ACCEPT})
    assert resp.status_code == 200, f"{repo}:{ref} -> {resp.status_code}"
    return resp.json(), resp.headers["docker-content-digest"]


def clone(root: Path, dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(root), str(dest)], check=True, timeout=60)
    return dest


def test_native_fanout_publishes_one_index(
    cli: Cli, cli_env: dict[str, str], loopback_registry: str, tmp_path: Path
) -> None:
    repo = f"crossplan-fanout-{uuid.uuid4().hex[:12]}/shell"
    root = tmp_path / "repo"
    plan_dir = shell_copy(root / "services" / "shell", f"{loopback_registry}/{repo}:1.0",
                          arch_tags=True)
    make_git_repo(root)
    res = cli("ci", "github", "-f", plan_dir, "--runners", "native", "--write", "--json",
              "--install", "./")
    assert res.code == 0, res.stderr
    workflow = root / ".github" / "workflows" / "crossplan.yml"
    assert res.json()["written"] == str(workflow.resolve())
    assert [j["runner"] for j in res.json()["jobs"]] == ["linux/amd64", "linux/arm64"]
    check_jsonschema([workflow], "vendor.github-workflows")
    assert actionlint([workflow]) == {str(workflow): []}
    gh = yaml.safe_load(workflow.read_text())
    jobs = github_job_scripts(gh, GH_MAIN)
    assert list(jobs) == ["build-linux-amd64", "build-linux-arm64", "publish"]
    assert gh["jobs"]["build-linux-arm64"]["runs-on"] == "ubuntu-24.04-arm"

    env = {**gh["env"], "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push",
           "GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main"}
    artifacts = tmp_path / "artifacts"  # upload-artifact, then download with merge-multiple
    artifacts.mkdir()
    outputs = {}
    for job in ("build-linux-amd64", "build-linux-arm64"):
        runner = clone(root, tmp_path / job)
        lines = plan_lines(jobs[job])
        platform = job.removeprefix("build-").replace("-", "/")
        assert all(f"--platform {platform}" in line for line in lines), lines
        outputs[job] = run_commands(lines, runner, cli_env, env, tmp_path / f"store-{job}")
        records = sorted((runner / DIGESTS).glob("*.json"))
        assert [r.name for r in records] == [f"image@{platform.replace('/', '-')}.json"]
        shutil.copy(records[0], artifacts)
    # the second runner took the platform-independent steps from the remote cache
    assert "substituted" in outputs["build-linux-arm64"][0]
    # nothing is tagged before the publish job: the per-platform images went by digest
    assert httpx.get(f"http://{ADDRESS}/v2/{repo}/tags/list", timeout=10).json().get(
        "tags") in (None, [])

    runner = clone(root, tmp_path / "publish")
    shutil.copytree(artifacts, runner / DIGESTS)
    [out] = run_commands(plan_lines(jobs["publish"]), runner, cli_env, env,
                         tmp_path / "store-publish")
    assert "tags written: 1.0, 1.0-amd64, 1.0-arm64" in out

    index, digest = manifest(repo, "1.0")
    plats = [(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]]
    assert plats == [("linux", "amd64"), ("linux", "arm64")]
    for m in index["manifests"]:
        _, arch_digest = manifest(repo, f"1.0-{m['platform']['architecture']}")
        assert arch_digest == m["digest"]
    tags = httpx.get(f"http://{ADDRESS}/v2/{repo}/tags/list", timeout=10).json()["tags"]
    assert sorted(tags) == ["1.0", "1.0-amd64", "1.0-arm64"]

    # the same index as one runner building both platforms (deterministic, same digest)
    single = cli("run", plan_dir, "--json", "--output", f"oci:{tmp_path / 'single'}",
                 env={"CROSSPLAN_CACHE_DIR": str(tmp_path / "store-single")})
    assert single.code == 0, single.stderr
    assert single.json()["images"][0]["index_digest"] == digest

    # publishing again changes nothing
    [again] = run_commands(plan_lines(jobs["publish"]), runner, cli_env, env,
                           tmp_path / "store-publish")
    assert "tags written: none (up to date)" in again


def test_gitlab_and_jenkins_fanouts_run_the_same_commands(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    plan_dir = shell_copy(root / "services" / "shell", f"{ADDRESS}/demo/shell:1.0")
    make_git_repo(root)
    gh = yaml.safe_load(cli("ci", "github", "-f", plan_dir, "--runners", "native",
                            "--install", "./").stdout)
    res = cli("ci", "gitlab", "-f", plan_dir, "--runners", "native", "--install", "./",
              "--write", "--json")
    assert res.code == 0, res.stderr
    check_jsonschema([root / ".gitlab-ci.yml"], "vendor.gitlab-ci")
    gl = yaml.safe_load((root / ".gitlab-ci.yml").read_text())
    gl_lines = plan_lines(gitlab_scripts(gl, GL_MAIN))
    gh_lines = [x for s in github_job_scripts(gh, GH_MAIN).values() for x in plan_lines(s)]
    assert sorted(gl_lines) == sorted(gh_lines)
    jenkins = cli("ci", "jenkins", "-f", plan_dir, "--runners", "native", "--install", "./")
    assert jenkins.code == 0, jenkins.stderr
    jf = parse_jenkinsfile(jenkins.stdout)
    main = [(stage, script.replace(".venv/bin/plan ", "plan ")) for stage, script in jf.shells
            if not jf.whens.get(stage, "").startswith("not")]  # the default branch's stages
    assert sorted(plan_lines(main)) == sorted(gh_lines)
    assert json.loads(res.stdout)["runners"] == "native"
