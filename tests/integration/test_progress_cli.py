"""`plan run --progress plain|quiet` and `-v` with and without --json, on a quick shell step:
phase lines on stderr, log lines prefixed with the node, stdout left to the result."""

from __future__ import annotations

import json
import re
from pathlib import Path

from registry_proc import RegistryProc
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
IMAGE = """
[project]
name = "img"
platforms = ["linux/amd64", "linux/arm64"]

[steps.gen]
kind = "shell"
src = "src/"
command = ["sh", "-c", "cat a.txt > out.txt"]
outputs = ["out.txt"]

[steps.image]
kind = "image"
base = "scratch"
copy = [{{ from = "gen", dest = "/data/" }}]
tags = ["{registry}/progress/img:1"]

[cache]
remote = "{registry}/progress/cache"
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


def test_push_and_cache_push_pull_say_what_they_do(
    cli: Cli, make_project: ProjectFactory, registry: RegistryProc, tmp_path: Path
) -> None:
    proj = make_project(IMAGE.format(registry=registry.address), files={"src/a.txt": "a\n"})
    r = cli("run", str(proj), "--push", "--progress", "plain")
    assert r.code == 0, r.stderr
    phases = [re.sub(STAMP, "", line) for line in r.stderr.splitlines()]
    assert "image: assembling (oci)" in phases, r.stderr
    pushing = [p for p in phases if p.startswith("image: pushing")]
    assert pushing[0] == "image: pushing", r.stderr
    assert re.fullmatch(rf"image: pushing: blobs (\d+)/\1, [\d.]+ MB uploaded to "
                        rf"{re.escape(registry.address)}/progress/img", pushing[-1]), r.stderr
    assert phases.index("image: published") > phases.index(pushing[-1])

    push = cli("cache", "push", "-f", str(proj), "--progress", "plain")
    assert push.code == 0, push.stderr
    assert re.search(STAMP + r"push: pushing to the remote cache \(3 node\(s\)\)$", push.stderr,
                     re.M), push.stderr
    assert re.search(STAMP + r"push: .*\(\d", push.stderr, re.M)
    pull = cli("cache", "pull", "-f", str(proj), "--progress", "plain",
               env={"CROSSPLAN_CACHE_DIR": str(tmp_path / "other-cache")})
    assert pull.code == 0, pull.stderr
    assert re.search(STAMP + r"pull: pulling from the remote cache", pull.stderr, re.M)
    quiet = cli("cache", "pull", "-f", str(proj), "--json",
                env={"CROSSPLAN_CACHE_DIR": str(tmp_path / "third-cache")})
    assert quiet.code == 0 and "nodes" in json.loads(quiet.stdout)
    assert not re.search(STAMP, quiet.stderr, re.M), quiet.stderr
