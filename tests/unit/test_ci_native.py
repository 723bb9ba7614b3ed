"""`plan ci --runners native` and where pipelines live: golden fan-out pipelines, one job
per platform on a runner of its architecture (no QEMU, no cross compiler for a native
platform), a publish job after them on the default branch only; the plan's path relative to
the repository root; how crossplan is installed.

Regenerate the goldens with ``CROSSPLAN_UPDATE_GOLDEN=1 pytest tests/unit/test_ci_native.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ci_pipeline import (
    bash_n,
    github_job_scripts,
    gitlab_scripts,
    parse_jenkinsfile,
    plan_lines,
)
from test_ci import GH_MAIN, GH_PR, GL_MAIN, GL_MR, REPO, check_golden, gen, kitchen

from crossplan import api, ci
from crossplan.ci import github, gitlab
from crossplan.ci.needs import CiOptions, analyze
from crossplan.errors import RecipeError
from crossplan.platforms import Platform
from crossplan.recipes.models import Recipe

FILES = {"github": "github.yml", "gitlab": "gitlab-ci.yml", "jenkins": "Jenkinsfile"}
EXAMPLES = ("hello", "kitchen")


def recipe(name: str) -> Recipe:
    if name == "kitchen":
        return kitchen(REPO / "nonexistent")
    return api.load(REPO / "examples" / name / "plan.toml")


@pytest.mark.parametrize("system", FILES)
@pytest.mark.parametrize("example", EXAMPLES)
def test_native_golden(example: str, system: str) -> None:
    text = gen(system, recipe(example), runners="native").text
    check_golden(f"native/{example}/{FILES[system]}", text)


def test_github_native_jobs() -> None:
    pipeline = gen("github", recipe("kitchen"), runners="native")
    doc = yaml.safe_load(pipeline.text)
    jobs = doc["jobs"]
    assert {k: v["runs-on"] for k, v in jobs.items()} == {
        "build-linux-amd64": "ubuntu-24.04", "build-linux-arm64": "ubuntu-24.04-arm",
        "build-linux-arm-v7": "ubuntu-24.04", "publish": "ubuntu-24.04"}
    assert jobs["publish"]["needs"] == ["build-linux-amd64", "build-linux-arm64",
                                        "build-linux-arm-v7"]
    assert jobs["publish"]["if"] == github.DEFAULT

    def uses(job: str) -> list[str]:
        return [s.get("uses", "").split("@")[0] for s in jobs[job]["steps"]]

    # QEMU only where a platform is not native: arm/v7's smoke test on the amd64 runner.
    assert "docker/setup-qemu-action" not in uses("build-linux-arm64")
    assert "docker/setup-qemu-action" in uses("build-linux-arm-v7")
    # kitchen's `emulate = true` step runs natively on each platform's own runner
    assert "docker/setup-qemu-action" not in uses("build-linux-amd64")
    assert [s["with"]["platforms"] for s in jobs["build-linux-arm-v7"]["steps"]
            if "qemu" in s.get("uses", "")] == ["arm"]
    for job in jobs.values():
        for step in job["steps"]:
            if "run" in step:
                bash_n(step["run"])
    main = github_job_scripts(doc, GH_MAIN)
    assert list(main) == list(jobs)
    for name, plat in (("build-linux-arm64", "linux/arm64"), ("build-linux-arm-v7",
                                                               "linux/arm/v7")):
        lines = plan_lines(main[name])
        assert all(f"--platform {plat}" in line for line in lines), lines
        assert lines[0].startswith("plan run nonexistent/plan.toml --platform")
        assert lines[-1].startswith("plan publish-platform nonexistent/plan.toml")
        assert "--digests .crossplan/digests image tools" in lines[-1]
    assert plan_lines(main["publish"]) == ["plan publish-index .crossplan/digests"]
    pr = github_job_scripts(doc, GH_PR)
    assert "publish" not in pr
    assert not any("publish" in line for s in pr.values() for line in plan_lines(s))
    assert all("--cache-mode read" in plan_lines(s)[0] for s in pr.values())


def test_native_job_needs_are_the_runners() -> None:
    r = recipe("kitchen")
    arm = analyze(r, runner=Platform.parse("linux/arm64"), only=Platform.parse("linux/arm64"))
    assert arm.rust_std == () and arm.qemu == ()
    assert "gcc" in arm.apt and not any("cross" in p for p in arm.apt)
    assert arm.platforms == (Platform.parse("linux/arm64"),)
    assert arm.rustup_targets == ("aarch64-unknown-linux-musl",)
    v7 = analyze(r, only=Platform.parse("linux/arm/v7"))
    assert v7.qemu == ("arm",) and v7.rust_std == (("armhf", "armv7-unknown-linux-gnueabihf"),)
    assert [str(p) for _, p in v7.tests] == ["linux/arm/v7"]


def test_gitlab_native_jobs() -> None:
    doc = yaml.safe_load(gen("gitlab", recipe("kitchen"), runners="native").text)
    assert doc[".crossplan-linux-arm64"]["tags"] == [gitlab.RUNNER_TAGS["arm64"]]
    assert doc[".crossplan-linux-arm-v7"]["tags"] == [gitlab.RUNNER_TAGS["amd64"]]
    assert [n["job"] for n in doc["publish"]["needs"]] == [
        "build:linux-amd64", "build:linux-arm64", "build:linux-arm-v7"]
    main = gitlab_scripts(doc, GL_MAIN)
    assert {job for job, _ in main} == {"build:linux-amd64", "build:linux-arm64",
                                        "build:linux-arm-v7", "publish"}
    for _, script in main:
        bash_n(script)
    assert plan_lines([s for s in main if s[0] == "publish"]) == [
        "plan publish-index .crossplan/digests"]
    mr = gitlab_scripts(doc, GL_MR)
    assert {job for job, _ in mr} == {"build:linux-amd64:merge-request",
                                      "build:linux-arm64:merge-request",
                                      "build:linux-arm-v7:merge-request"}
    assert doc["build:linux-arm64"]["artifacts"]["paths"] == [".crossplan/digests/"]


def test_jenkins_native_structure() -> None:
    text = gen("jenkins", recipe("kitchen"), runners="native").text
    jf = parse_jenkinsfile(text)
    assert "agent none" in text and "agent { label 'arm64' }" in text
    assert jf.whens["Publish the indexes"] == "branch 'main'"
    assert jf.whens["Push linux/arm64 by digest"] == "branch 'main'"
    assert jf.stages[-1] == "Publish the indexes"
    for _, script in jf.shells:
        bash_n(script)
    assert "unstash 'digests-linux-arm-v7'" in text


def test_plan_path_is_relative_to_the_root(tmp_path: Path) -> None:
    (tmp_path / "services" / "api").mkdir(parents=True)
    r = kitchen(tmp_path / "services" / "api")
    loc = ci.locate(r.file, tmp_path)
    assert (loc.root, loc.plan, loc.git, loc.crossplan_repo) == (
        tmp_path.resolve(), "services/api/plan.toml", True, False)
    opts = CiOptions(install="crossplan @ git+https://example.invalid/c")
    text = ci.generate("gitlab", r, opts, loc).text
    assert "plan run services/api/plan.toml " in text
    assert "plan test image -f services/api/plan.toml --platform linux/arm64" in text
    assert "'crossplan @ git+https://example.invalid/c'" in text
    at_root = ci.locate(tmp_path / "plan.toml", tmp_path)
    assert at_root.plan == "plan.toml"
    no_git = ci.locate(r.file, None)
    assert no_git.root == (tmp_path / "services" / "api").resolve() and not no_git.git


def test_install_default_and_required(tmp_path: Path) -> None:
    r = kitchen(tmp_path)
    with pytest.raises(RecipeError) as info:
        ci.generate("github", r, CiOptions(), ci.locate(r.file, tmp_path))
    assert info.value.exit_code == 2 and "--install" in (info.value.hint or "")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "crossplan"\n')
    pipeline = ci.generate("github", r, CiOptions(), ci.locate(r.file, tmp_path))
    assert "pip install --quiet ./" in pipeline.text and pipeline.as_json()["install"] == "./"
    pinned = ci.generate("github", r, CiOptions(install="crossplan==9.9"),
                         ci.locate(r.file, tmp_path))
    assert "pip install --quiet crossplan==9.9" in pinned.text


def test_unknown_runners(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="single or native"):
        ci.generate("github", kitchen(tmp_path), CiOptions(runners="qemu", install="x"))
