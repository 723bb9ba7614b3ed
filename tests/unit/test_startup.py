"""Start-up cost: which modules a command loads, asked of a fresh interpreter (the one
unit test allowed to start one: sys.modules of this process is whatever other tests left).

`plan --version` and `plan --help` load no planner, recipe model or executor; `plan run` on
a cached shell plan loads no registry client (httpx), Docker SDK, remote cache, bench, CI,
release code or matplotlib."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from testkit import require_component

import crossplan

# Runs the CLI in-process for each argv in turn (argv lists as JSON in sys.argv[1]) and
# prints, per invocation, its exit code and the sorted sys.modules after it.
_SCRIPT = r"""
import contextlib, io, json, sys
from crossplan.cli import main
report = []
for argv in json.loads(sys.argv[1]):
    sys.argv = ["plan", *argv]
    buf = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(buf):
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    report.append({"code": code, "out": buf.getvalue(), "modules": sorted(sys.modules)})
print(json.dumps(report))
"""

PLAN = """\
[project]
name = "startup"
platforms = ["linux/amd64", "linux/arm64"]

[steps.gen]
kind = "shell"
src = "src/"
command = ["sh", "-c", "cat a.txt > out.txt"]
outputs = ["out.txt"]
platform_independent = true

[steps.report]
kind = "shell"
src = "src/"
deps = ["gen"]
command = ["sh", "-c", "cat deps/gen/out.txt > r.txt; echo $TARGETARCH >> r.txt"]
outputs = ["r.txt"]
"""

HEAVY = (
    "httpx", "docker", "requests", "matplotlib", "crossplan.cache.remote",
    "crossplan.cache.signing", "crossplan.executors.substitution", "crossplan.bench",
    "crossplan.ci", "crossplan.release", "crossplan.api.dev", "crossplan.api.caching",
    "crossplan.backends.oci", "crossplan.backends.buildx", "crossplan.images.buildx",
    "crossplan.images.oci", "crossplan.checks",
)
# Not even these for a memoised no-op run (cli/noop.py).
NOOP_NEVER = ("typer", "click", "rich", "pydantic", "blake3", "diskcache", "pathspec",
              "crossplan.cache.store", "crossplan.recipes", "crossplan.cli.commands")
PLANNER = ("crossplan.planner", "crossplan.recipes.models", "crossplan.probe", "networkx",
           "crossplan.executors.host", "crossplan.api.running")


def _fresh(argvs: list[list[str]], env: dict[str, str], cwd: Path) -> list[dict[str, object]]:
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(argvs)], env=env, cwd=cwd,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report: list[dict[str, object]] = json.loads(proc.stdout.splitlines()[-1])
    return report


def _loaded(modules: object, names: tuple[str, ...]) -> list[str]:
    assert isinstance(modules, list)
    return [m for m in modules if any(m == n or m.startswith(n + ".") for n in names)]


def _backdate(root: Path) -> None:
    """Everything under ``root`` modified a minute ago: nothing racy for the no-op memo."""
    old = time.time() - 60
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            os.utime(os.path.join(dirpath, name), (old, old), follow_symlinks=False)
    os.utime(root, (old, old))


def test_cached_run_and_help_load_only_what_they_need(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("hello\n")
    (tmp_path / "plan.toml").write_text(PLAN)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CROSSPLAN_", "COV_", "PYTEST_"))}
    env |= {"CROSSPLAN_CACHE_DIR": str(tmp_path / "store"),
            "XDG_CACHE_HOME": str(tmp_path / "xdg"), "COLUMNS": "200"}
    first = _fresh([["run", str(tmp_path), "--progress", "quiet"]], env, tmp_path)
    assert first[0]["code"] == 0, first[0]["out"]
    version, helped, cached = _fresh(
        [["--version"], ["--help"], ["run", str(tmp_path), "--json", "--progress", "quiet"]],
        env, tmp_path)

    assert version["code"] == 0 and "crossplan" in str(version["out"])
    assert helped["code"] == 0 and "run" in str(helped["out"])
    assert _loaded(version["modules"], PLANNER + HEAVY) == []
    assert _loaded(helped["modules"], PLANNER + HEAVY) == []

    assert cached["code"] == 0
    steps = json.loads(str(cached["out"]))["steps"]
    assert len(steps) == 3 and {s["status"] for s in steps} == {"cached"}
    assert "crossplan.planner" in cached["modules"]  # it did plan
    assert _loaded(cached["modules"], HEAVY) == []

    # Nothing changed since a run that found everything cached (and nothing is racy): the
    # no-op memo answers before Typer, rich, pydantic, the planner or the store load.
    from crossplan.probe.sandbox import sandbox_problem

    require_component(sandbox_problem() is None, "bubblewrap (without it runs warn: no memo)")
    _backdate(tmp_path)
    argv = ["run", str(tmp_path), "--json", "--progress", "quiet"]
    (memoising,) = _fresh([argv], env, tmp_path)
    assert memoising["code"] == 0 and "crossplan.planner" in memoising["modules"]
    (replayed,) = _fresh([argv], env, tmp_path)
    assert replayed["code"] == 0
    assert [s["status"] for s in json.loads(str(replayed["out"]))["steps"]] == ["cached"] * 3
    assert _loaded(replayed["modules"], PLANNER + HEAVY + NOOP_NEVER) == []


def test_version_fast_path_prints_what_the_app_prints(tmp_path: Path) -> None:
    """`plan --version` is answered before Typer loads, with the app's own --version text."""
    from typer.testing import CliRunner

    from crossplan.cli import app

    env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_", "PYTEST_"))}
    (fast,) = _fresh([["--version"]], env, tmp_path)
    assert _loaded(fast["modules"], ("typer", "click", "rich", "pydantic")) == []
    via_app = CliRunner().invoke(app, ["--version"])
    assert via_app.exit_code == 0 and fast["code"] == 0
    assert fast["out"] == via_app.stdout == "crossplan " + crossplan.__version__ + "\n"


def test_run_app_parses_run_as_the_full_app_does() -> None:
    """`plan run` is parsed by an app holding only run's modules: its `run` (options, help)
    and its top-level options are those of the app with every command."""
    import typer.main

    from crossplan.cli import commands

    slim = typer.main.get_command(commands.run_app)
    full = typer.main.get_command(commands.app)

    def params(cmd: Any) -> list[tuple[object, ...]]:
        return [(p.name, p.opts, p.secondary_opts, p.default, getattr(p, "help", None),
                 repr(getattr(p, "type", None)), p.multiple, p.nargs, p.required,
                 getattr(p, "is_flag", None))
                for p in cmd.params]

    slim_run, full_run = slim.commands["run"], full.commands["run"]  # type: ignore[attr-defined]
    assert params(slim_run) == params(full_run) and len(params(full_run)) > 10
    assert slim_run.help == full_run.help and slim_run.name == full_run.name == "run"
    assert params(slim) == params(full) and slim.help == full.help
    assert set(slim.commands) < set(full.commands)  # type: ignore[attr-defined]


def test_memo_key_is_the_environment_the_run_started_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A module setting a variable during the run (executors/reapi: GRPC_VERBOSITY) must not
    key the memo where the next run's replay does not look."""
    from crossplan.cli import noop

    before = noop.memo_path(["run", "x"])
    monkeypatch.setenv("CROSSPLAN_TEST_SET_DURING_RUN", "1")
    assert noop.memo_path(["run", "x"]) == before
    assert noop.memo_path(["run", "x"], dict(os.environ)) != before
