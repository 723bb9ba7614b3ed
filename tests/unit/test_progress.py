"""The plain progress renderer (cli/progress.py) with a fake clock and fake events: which
lines it writes, the heartbeat's cadence, quiet and stopped renderers, the mode choice."""

from __future__ import annotations

import signal

import pytest

from crossplan.cli.progress import HEARTBEAT, PlainProgress, choose_mode, interrupts
from crossplan.errors import RecipeError
from crossplan.executors.events import StepEvent
from crossplan.planner.graph import NodeId

C = NodeId("hello-c", "linux/arm64")
GO = NodeId("hello-go", "linux/amd64")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def renderer(total: int | None = 2, *, phases: bool = True) -> tuple[PlainProgress, Clock,
                                                                   list[str]]:
    clock = Clock()
    lines: list[str] = []
    r = PlainProgress(lines.append, total=total, phases=phases, clock=clock,
                      stamp=lambda: f"t+{clock.t - 1000:.0f}")
    return r, clock, lines


def test_one_line_per_phase_change_with_time_and_count() -> None:
    r, clock, lines = renderer()
    r.begin("planning", "probing toolchains")
    clock.t += 3
    r.end("planning", "2 node(s) planned")
    r.event(StepEvent("started", C, "k"))
    r.event(StepEvent("phase", C, "k", message="staging"))
    clock.t += 1
    r.event(StepEvent("phase", C, "k", message="compiling"))
    clock.t += 4
    r.event(StepEvent("finished", C, "k", seconds=5.25))
    r.event(StepEvent("cached", GO, "k2"))
    assert lines == [
        "[t+0] planning: probing toolchains",
        "[t+3] planning: 2 node(s) planned (3.0 s)",
        "[t+3] hello-c@linux/arm64: staging",
        "[t+4] hello-c@linux/arm64: compiling",
        "[t+8] hello-c@linux/arm64: built in 5.2 s [1/2]",
        "[t+8] hello-go@linux/amd64: cached [2/2]",
    ]
    assert not r.active


def test_heartbeat_every_interval_of_silence_per_running_node() -> None:
    r, clock, lines = renderer()
    r.event(StepEvent("started", C))
    r.event(StepEvent("phase", C, message="compiling"))
    lines.clear()
    for _ in range(int(HEARTBEAT * 4 * 4)):  # ticks every 0.25 s for 4 intervals
        clock.t += 0.25
        r.tick()
    assert lines == [f"[t+{HEARTBEAT * k:.0f}] hello-c@linux/arm64: still compiling "
                     f"({HEARTBEAT * k:.0f} s)" for k in (1, 2, 3, 4)]
    assert HEARTBEAT < 10  # "at least every 10 s"


def test_a_new_phase_or_log_line_resets_the_heartbeat() -> None:
    r, clock, lines = renderer()
    r.event(StepEvent("started", C))
    r.event(StepEvent("phase", C, message="compiling"))
    clock.t += HEARTBEAT - 1
    r.event(StepEvent("output", C, message="cc -c hello.c"))
    clock.t += HEARTBEAT - 1
    r.tick()
    assert lines[-1] == "hello-c@linux/arm64 | cc -c hello.c"
    clock.t += 1
    r.tick()
    assert lines[-1] == f"[t+{2 * HEARTBEAT - 1:.0f}] hello-c@linux/arm64: still compiling " \
        f"({2 * HEARTBEAT - 1:.0f} s)"


def test_heartbeats_cover_the_command_own_activities_and_several_nodes() -> None:
    r, clock, lines = renderer(None)
    r.begin("planning", "probing toolchains")
    clock.t += HEARTBEAT
    r.tick()
    r.end("planning")
    r.event(StepEvent("started", GO))
    r.event(StepEvent("phase", GO, message="pushing: blobs 1/3, 0.1 MB uploaded to r/x"))
    r.event(StepEvent("started", C))
    clock.t += HEARTBEAT
    r.tick()
    assert lines[1] == f"[t+{HEARTBEAT:.0f}] planning: still probing toolchains " \
        f"({HEARTBEAT:.0f} s)"
    assert lines[-2:] == [
        f"[t+{2 * HEARTBEAT:.0f}] hello-go@linux/amd64: still pushing ({HEARTBEAT:.0f} s)",
        f"[t+{2 * HEARTBEAT:.0f}] hello-c@linux/arm64: still starting ({HEARTBEAT:.0f} s)",
    ]
    r.event(StepEvent("skipped", C, message="a dependency failed"))
    assert lines[-1].endswith("hello-c@linux/arm64: skipped (a dependency failed) [1 done]")


def test_publishing_after_the_build_is_its_own_activity() -> None:
    r, _, lines = renderer(1)
    r.event(StepEvent("started", GO))
    r.event(StepEvent("finished", GO, seconds=1.0))
    r.event(StepEvent("phase", GO, message="pushing"))
    assert set(r.active) == {str(GO)}
    r.event(StepEvent("phase", GO, message="published"))
    assert not r.active
    assert lines[-2:] == ["[t+0] hello-go@linux/amd64: pushing",
                          "[t+0] hello-go@linux/amd64: published"]


def test_quiet_says_only_warnings_and_log_lines() -> None:
    r, clock, lines = renderer(phases=False)
    r.begin("planning", "probing")
    r.event(StepEvent("started", C))
    r.event(StepEvent("phase", C, message="compiling"))
    r.event(StepEvent("warning", C, message="no sandbox"))
    r.event(StepEvent("output", C, message="make: hello"))
    clock.t += 60
    r.tick()
    r.event(StepEvent("finished", C))
    assert lines == ["warning: hello-c@linux/arm64: no sandbox",
                     "hello-c@linux/arm64 | make: hello"]


def test_nothing_more_once_stopped() -> None:
    r, clock, lines = renderer()
    r.event(StepEvent("started", C))
    r.stop()
    r.event(StepEvent("failed", C, message="make: *** Aborted"))
    r.event(StepEvent("warning", C, message="x"))
    clock.t += 60
    r.tick()
    assert lines == []


@pytest.mark.parametrize(("mode", "terminal", "as_json", "want"), [
    ("auto", True, False, "tty"),
    ("auto", False, False, "plain"),
    ("auto", True, True, "quiet"),
    ("auto", False, True, "quiet"),
    ("plain", True, True, "plain"),
    ("tty", False, False, "tty"),
    ("quiet", True, False, "quiet"),
])
def test_choose_mode(mode: str, terminal: bool, as_json: bool, want: str) -> None:
    assert choose_mode(mode, terminal=terminal, as_json=as_json) == want


def test_unknown_mode_is_a_usage_error() -> None:
    with pytest.raises(RecipeError, match="auto, tty, plain, quiet"):
        choose_mode("fancy", terminal=False, as_json=False)


def test_interrupts_stop_once_then_let_the_clean_up_run() -> None:
    stops: list[int] = []
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), interrupts(lambda: stops.append(1)):
        try:
            signal.raise_signal(signal.SIGTERM)
        finally:
            signal.raise_signal(signal.SIGINT)  # during clean-up: no second raise
            stops.append(2)
    assert stops == [1, 1, 2]
    assert signal.getsignal(signal.SIGTERM) is before
