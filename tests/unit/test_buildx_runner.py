"""The buildx subprocess runner closes its pipe and log and reaps the child on every path:
success, failure, a missing program, an error while streaming, and a timeout."""

from __future__ import annotations

import gc
import io
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crossplan.backends.buildx.invoke import SubprocessRunner
from crossplan.errors import EnvironmentProblem

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def no_resource_warning() -> Iterator[None]:
    """Fails the test if a ResourceWarning (unclosed file, child still running) is emitted,
    including from objects collected after the call."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, leaks


class Recorder:
    """An injected ``popen`` that starts the real process and keeps it for inspection."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def __call__(self, *args: Any, **kw: Any) -> subprocess.Popen[str]:
        proc: subprocess.Popen[str] = subprocess.Popen(*args, **kw)
        self.procs.append(proc)
        return proc

    def assert_released(self) -> None:
        assert self.procs
        for proc in self.procs:
            assert proc.returncode is not None, "child not reaped"
            assert proc.stdout is not None and proc.stdout.closed, "pipe left open"


def runner(rec: Recorder) -> SubprocessRunner:
    return SubprocessRunner({"PATH": "/usr/bin:/bin"}, popen=rec)


@pytest.mark.usefixtures("no_resource_warning")
def test_failing_child_output_and_log(tmp_path: Path) -> None:
    rec, log = Recorder(), tmp_path / "b.log"
    code, out = runner(rec)(["sh", "-c", "echo a; echo b >&2; exit 3"], log=log)
    assert (code, out) == (3, "a\nb\n")
    assert log.read_text() == "$ sh -c echo a; echo b >&2; exit 3\na\nb\n# exit 3\n"
    rec.assert_released()


@pytest.mark.usefixtures("no_resource_warning")
def test_timeout_kills_the_child_and_what_it_started(tmp_path: Path) -> None:
    """The background sleep keeps the pipe open: only killing the process group ends it."""
    rec, log = Recorder(), tmp_path / "b.log"
    started = time.monotonic()
    with pytest.raises(EnvironmentProblem, match=r"did not finish within 0\.3s"):
        runner(rec)(["sh", "-c", "(sleep 30) & echo started; wait"], log=log, timeout=0.3)
    assert time.monotonic() - started < 10
    rec.assert_released()
    assert log.read_text().endswith("started\n# killed after 0.3s\n")


@pytest.mark.usefixtures("no_resource_warning")
def test_an_error_while_streaming_kills_and_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError("stderr is gone")

    monkeypatch.setattr(sys, "stderr", Broken())
    rec = Recorder()
    started = time.monotonic()
    with pytest.raises(OSError, match="stderr is gone"):
        runner(rec)(["sh", "-c", "echo x; sleep 30"], echo=True)
    assert time.monotonic() - started < 10
    rec.assert_released()


@pytest.mark.usefixtures("no_resource_warning")
def test_missing_program_is_an_environment_problem(tmp_path: Path) -> None:
    def missing(*args: Any, **kw: Any) -> subprocess.Popen[str]:
        raise FileNotFoundError(args[0][0])

    with pytest.raises(EnvironmentProblem, match="program not found: docker"):
        SubprocessRunner({}, popen=missing)(["docker", "version"], log=tmp_path / "b.log")


@pytest.mark.usefixtures("no_resource_warning")
def test_a_log_that_cannot_be_opened_starts_nothing(tmp_path: Path) -> None:
    rec = Recorder()
    with pytest.raises(OSError):
        runner(rec)(["sh", "-c", "exit 0"], log=tmp_path / "missing-dir" / "b.log")
    assert rec.procs == []

