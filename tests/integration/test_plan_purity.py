"""A plan is a pure value: ``plan graph --format json`` of a buildx plan with compile =
"container" is byte-identical whether or not a Docker daemon answers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from testkit import EXAMPLES, Cli

pytestmark = pytest.mark.integration


def test_graph_json_is_the_same_with_and_without_a_daemon(tmp_path: Path, cli: Cli) -> None:
    proj = tmp_path / "bx"
    shutil.copytree(EXAMPLES / "buildx", proj)
    toml = proj / "plan.toml"
    text = toml.read_text()
    assert 'compile = "host"' in text
    toml.write_text(text.replace('compile = "host"', 'compile = "container"'))
    with_daemon = cli("graph", "-f", proj, "--format", "json")
    without = cli("graph", "-f", proj, "--format", "json",
                  env={"DOCKER_HOST": f"unix://{tmp_path}/missing.sock"})
    assert with_daemon.code == 0, with_daemon.stderr
    assert without.code == 0, without.stderr
    assert with_daemon.stdout == without.stdout  # byte-identical
    graph = json.loads(with_daemon.stdout)
    # compile steps run inside buildx: no host compile nodes, the image's Action says buildx
    assert [n["id"] for n in graph["nodes"]] == ["image"]
    assert graph["nodes"][0]["action"]["backend"] == "buildx"
    assert graph["nodes"][0]["input_key"]
