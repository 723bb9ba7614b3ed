"""`plan explain` answers "why did this rebuild?"; `plan graph` prints the DAG in 4 formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testkit import Cli


def test_explain_after_an_input_change_names_the_file(cli: Cli, shell_project: Path) -> None:
    assert cli("run", shell_project).code == 0
    unchanged = cli("explain", "gen", "-f", shell_project, "--json")
    assert unchanged.code == 0, unchanged.stderr
    doc = unchanged.json()
    assert doc["cached"] is True
    assert doc["changes"] == ["nothing changed since the last recorded run"]

    (shell_project / "gen" / "b.txt").write_text("world!\n")
    result = cli("explain", "gen", "-f", shell_project, "--json")
    assert result.code == 0, result.stderr
    doc = result.json()
    assert doc["node"] == "gen"
    assert doc["cached"] is False
    assert doc["key"] != doc["last_key"]
    assert doc["changes"] == ["input changed: b.txt"]
    assert doc["components"]["kind"] == "shell"
    assert doc["inputs"]["files"] == 2


def test_explain_after_a_command_change_names_the_command(
    cli: Cli, shell_project: Path
) -> None:
    assert cli("run", shell_project).code == 0
    toml = shell_project / "plan.toml"
    toml.write_text(toml.read_text().replace("words for", "words on"))
    result = cli("explain", "report", "-f", shell_project, "--platform", "linux/arm64", "--json")
    assert result.code == 0, result.stderr
    doc = result.json()
    assert doc["node"] == "report@linux/arm64"
    assert doc["platform"] == "linux/arm64"
    assert len(doc["changes"]) == 1
    assert doc["changes"][0].startswith("step.command changed:")
    assert "words on" in doc["changes"][0]
    assert set(doc["deps"]) == {"gen", "count"}


def test_explain_text_output(cli: Cli, shell_project: Path) -> None:
    assert cli("run", shell_project).code == 0
    (shell_project / "words" / "list.txt").write_text("just\ntwo\n")
    result = cli("explain", "count", "-f", shell_project)
    assert result.code == 0, result.stderr
    assert "input changed: list.txt" in result.stdout
    assert "cached: no" in result.stdout


def test_explain_unknown_step_exits_2(cli: Cli, shell_project: Path) -> None:
    result = cli("explain", "nope", "-f", shell_project)
    assert result.code == 2
    assert "unknown step 'nope'" in result.stderr


def test_graph_json(cli: Cli, shell_project: Path) -> None:
    result = cli("graph", "-f", shell_project, "--format", "json")
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["platforms"] == ["linux/amd64", "linux/arm64"]
    assert {n["id"] for n in doc["nodes"]} == {
        "gen", "count", "report@linux/amd64", "report@linux/arm64",
    }
    assert sorted(map(tuple, doc["edges"])) == [
        ("count", "report@linux/amd64"), ("count", "report@linux/arm64"),
        ("gen", "report@linux/amd64"), ("gen", "report@linux/arm64"),
    ]


@pytest.mark.parametrize(
    ("fmt", "fragments"),
    [
        ("dot", ["digraph plan {", '"gen" -> "report@linux/amd64";',
                 '"count" -> "report@linux/arm64";']),
        ("mermaid", ["graph LR", "report (shell)<br/>linux/arm64", "-->"]),
        ("text", ["report@linux/amd64", "<- count, gen"]),
    ],
)
def test_graph_formats(cli: Cli, shell_project: Path, fmt: str, fragments: list[str]) -> None:
    result = cli("graph", "-f", shell_project, "--format", fmt)
    assert result.code == 0, result.stderr
    for fragment in fragments:
        assert fragment in result.stdout


def test_graph_mermaid_edges_match_the_plan(cli: Cli, shell_project: Path) -> None:
    out = cli("graph", "-f", shell_project, "--format", "mermaid").stdout
    ids = {}
    for line in out.splitlines():
        if '["' in line:  # n2["report (shell)<br/>linux/amd64"]
            nid, label = line.strip().split('["', 1)
            step, plat = label.split(" ")[0], label.split("<br/>")[1].rstrip('"]')
            ids[nid] = step if plat == "any" else f"{step}@{plat}"
    edges = sorted(
        (ids[a], ids[b]) for a, _, b in (ln.split() for ln in out.splitlines() if "-->" in ln)
    )
    assert edges == [
        ("count", "report@linux/amd64"), ("count", "report@linux/arm64"),
        ("gen", "report@linux/amd64"), ("gen", "report@linux/arm64"),
    ]


def test_graph_platform_flag(cli: Cli, shell_project: Path) -> None:
    result = cli("graph", "-f", shell_project, "--format", "json", "--platform", "arm64")
    assert {n["id"] for n in result.json()["nodes"]} == {"gen", "count", "report@linux/arm64"}


def test_graph_unknown_format_is_an_error(cli: Cli, shell_project: Path) -> None:
    result = cli("graph", "-f", shell_project, "--format", "png")
    assert result.code != 0
    assert "unknown format 'png'" in result.stderr


def test_graph_does_not_build(cli: Cli, shell_project: Path, cache_dir: Path) -> None:
    assert cli("graph", "-f", shell_project).code == 0
    assert not (cache_dir / "blobs").exists()
