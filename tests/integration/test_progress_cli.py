"""`plan run --progress plain|quiet` and `-v` with and without --json, on a quick shell step:
phase lines on stderr, log lines prefixed with the node, stdout left to the result."""

from __future__ import annotations

import json
import re

from testkit import Cli, ProjectFactory

TWO = """
[project]
name = "two"
platforms = ["linux/amd64", "linux/arm64"]

[steps.gen]
kind = "shell"
src = "src/"
command = ["sh", "-c", "echo line-one-$TARGETARCH; echo line-two >&2; cat a.txt > out.txt"]
outputs = ["out.txt"]
"""
STAMP = r"^\[\d\d:\d\d:\d\d\] "


def test_plain_lines_and_verbose_logs_keep_json_on_stdout(
    cli: Cli, make_project: ProjectFactory
) -> None:
    proj = make_project(TWO, files={"src/a.txt": "a\n"})
    r = cli("run", str(proj), "--json", "-v", "--progress", "plain")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True
    lines = r.stderr.splitlines()
    assert re.match(STAMP + "planning: ", lines[0]), r.stderr
    for arch in ("amd64", "arm64"):
        node = f"gen@linux/{arch}"
        mine = [line for line in lines if node in line]
        phases = [re.sub(STAMP, "", line) for line in mine if re.match(STAMP, line)]
        assert phases[:2] == [f"{node}: staging", f"{node}: running"], r.stderr
        assert re.fullmatch(rf"{node}: built in [\d.]+ s \[\d/2\]", phases[-1]), r.stderr
        assert f"{node} | line-one-{arch}" in lines and f"{node} | line-two" in lines
    cached = cli("run", str(proj), "--progress", "plain")
    assert cached.code == 0
    assert "gen@linux/amd64: cached [" in cached.stderr and "cached" in cached.stdout


def test_json_alone_is_quiet_and_verbose_alone_streams(
    cli: Cli, make_project: ProjectFactory
) -> None:
    proj = make_project(TWO, files={"src/a.txt": "a\n"})
    r = cli("run", str(proj), "--json", "-v")
    assert r.code == 0 and json.loads(r.stdout)["ok"] is True
    assert "gen@linux/amd64 | line-one-amd64" in r.stderr
    assert not re.search(STAMP, r.stderr, re.M), r.stderr  # --json: no phase lines
    bad = cli("run", str(proj), "--progress", "fancy")
    assert bad.code == 2 and "auto, tty, plain, quiet" in bad.stderr
