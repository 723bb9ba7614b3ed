"""What a long command shows while it works, on stderr (stdout stays for the result).

``plain`` (piped, CI logs): one timestamped line per phase change of every node
(``[12:03:04] hello-c@linux/arm64: compiling``) and, while one goes on, a heartbeat every
HEARTBEAT seconds (``still compiling (20 s)``). ``tty``: a live view (rich Live) of every
running node with its phase and elapsed time, and the overall count. ``quiet``: warnings
only. With ``-v`` every mode also streams the steps' log lines, prefixed with the node.

The renderers are fed StepEvents (from worker threads) and the command's own activities
(``begin("planning", "probing toolchains")`` ... ``end("planning")``); ``Heartbeat`` ticks
them from a thread. ``interrupts()`` turns SIGINT/SIGTERM into a stopped run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from types import FrameType
from typing import Annotated, Any, Literal, Protocol

import typer

from crossplan.executors.events import StepEvent

__all__ = [
    "HEARTBEAT",
    "Heartbeat",
    "LiveProgress",
    "PlainProgress",
    "ProgressMode",
    "ProgressOpt",
    "Renderer",
    "choose_mode",
    "interrupts",
    "progress_for",
    "stderr_writer",
]

ProgressMode = Literal["auto", "tty", "plain", "quiet"]
ProgressOpt = Annotated[str, typer.Option(
    "--progress", help="auto | tty (live view) | plain (timestamped lines) | quiet; auto: "
    "tty on a terminal, plain when piped, quiet with --json (progress is on stderr)")]
HEARTBEAT = 9.0  # seconds of silence on a running node before a "still ..." line (< 10)
_DONE = {"finished": "built", "cached": "cached", "substituted": "substituted",
         "checked": "checked", "failed": "failed", "skipped": "skipped"}


def choose_mode(mode: str, *, terminal: bool, as_json: bool) -> Literal["tty", "plain", "quiet"]:
    """``auto``: a live view on a terminal, plain lines when piped, quiet with --json."""
    if mode not in ("auto", "tty", "plain", "quiet"):
        from crossplan.errors import RecipeError

        raise RecipeError(f"--progress {mode}: not one of auto, tty, plain, quiet",
                          hint="--progress auto|tty|plain|quiet")
    if mode == "auto":
        return "quiet" if as_json else ("tty" if terminal else "plain")
    return mode  # type: ignore[return-value]


class Renderer(Protocol):
    def event(self, e: StepEvent) -> None: ...
    def begin(self, label: str, phase: str) -> None: ...
    def end(self, label: str, note: str = "") -> None: ...
    def tick(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class _Activity:
    label: str
    phase: str
    started: float  # when the node (or the command's activity) began
    last: float  # when a line was last written for it


def _base(phase: str) -> str:
    """``pushing: blobs 2/5 ...`` -> ``pushing``."""
    return phase.split(":", 1)[0]


def _secs(s: float) -> str:
    return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"


class PlainProgress:
    """Lines for logs. ``phases=False`` (quiet): warnings and ``-v`` output only."""

    def __init__(
        self, write: Callable[[str], None], *, total: int | None = None, phases: bool = True,
        clock: Callable[[], float] = time.monotonic, stamp: Callable[[], str] | None = None,
        every: float = HEARTBEAT,
    ) -> None:
        self.write = write
        self.total = total
        self.phases = phases
        self.clock = clock
        self.stamp = stamp or (lambda: datetime.now().strftime("%H:%M:%S"))
        self.every = every
        self.done = 0
        self.active: dict[str, _Activity] = {}
        self.stopped = False  # set by an interrupt: nothing more is said
        self.lock = threading.RLock()

    def _line(self, text: str) -> None:
        if not self.stopped:
            self.write(f"[{self.stamp()}] {text}")

    def _count(self) -> str:
        return f"{self.done}/{self.total}" if self.total is not None else f"{self.done} done"

    def begin(self, label: str, phase: str) -> None:
        with self.lock:
            now = self.clock()
            self.active[label] = _Activity(label, phase, now, now)
            if self.phases:
                self._line(f"{label}: {phase}")

    def end(self, label: str, note: str = "") -> None:
        with self.lock:
            act = self.active.pop(label, None)
            if self.phases and act is not None:
                took = _secs(self.clock() - act.started)
                self._line(f"{label}: {note or 'done'} ({took})")

    def event(self, e: StepEvent) -> None:
        label = str(e.node)
        with self.lock:
            if self.stopped:
                return
            now = self.clock()
            if e.kind == "warning":
                self.write(f"warning: {label}: {e.message}")
            elif e.kind == "output":
                self.write(f"{label} | {e.message}")
                if label in self.active:
                    self.active[label].last = now
            elif e.kind == "started":
                self.active[label] = _Activity(label, "starting", now, now)
            elif e.kind == "phase":
                act = self.active.get(label)
                if act is None:  # after its build: publishing an image
                    act = self.active[label] = _Activity(label, e.message, now, now)
                act.phase, act.last = e.message, now
                if e.message == "published":
                    del self.active[label]
                if self.phases:
                    self._line(f"{label}: {e.message}")
            elif e.kind in _DONE:
                self.active.pop(label, None)
                self.done += 1
                if self.phases:
                    took = f" in {_secs(e.seconds)}" if e.kind == "finished" else ""
                    why = f" ({e.message.splitlines()[0]})" if e.kind == "skipped" and \
                        e.message else ""
                    self._line(f"{label}: {_DONE[e.kind]}{took}{why} [{self._count()}]")

    def tick(self) -> None:
        """A heartbeat line for each activity silent for ``every`` seconds."""
        if not self.phases:
            return
        with self.lock:
            now = self.clock()
            for act in sorted(self.active.values(), key=lambda a: a.started):
                if now - act.last >= self.every:
                    act.last = now
                    self._line(f"{act.label}: still {_base(act.phase)} "
                               f"({now - act.started:.0f} s)")

    def stop(self) -> None:
        self.stopped = True


class LiveProgress(PlainProgress):
    """A terminal: every running node with its phase and elapsed time, and the count,
    redrawn in place (rich Live, transient); warnings and ``-v`` lines scroll above it."""

    def __init__(self, console: Any, *, total: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from rich.live import Live

        super().__init__(self._print, total=total, phases=False, clock=clock)
        self.console = console
        self.t0 = clock()
        self.live = Live(console=console, transient=True, refresh_per_second=4,
                         get_renderable=self._render, redirect_stderr=False,
                         redirect_stdout=False)
        self.live.start()

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _render(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        now = self.clock()
        # No self.lock here: event() prints through the console (Live's lock) holding it.
        acts = sorted(tuple(self.active.values()), key=lambda a: a.started)
        count = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
        grid = Table.grid(padding=(0, 2))
        for _ in range(4):
            grid.add_column()
        head = f"{count} done, {len(acts)} running, {_secs(now - self.t0)}"
        grid.add_row(Text("building", style="bold"), Text(head), Text(""), Text(""))
        for a in acts:
            step, _, plat = a.label.partition("@")
            grid.add_row(Text(f"  {step}", style="cyan"), Text(plat), Text(a.phase),
                         Text(_secs(now - a.started), style="dim"))
        return grid

    def stop(self) -> None:
        super().stop()
        self.live.stop()


class Heartbeat:
    """Calls ``renderer.tick()`` every ``every`` seconds from a daemon thread until
    ``close()`` (or the end of the ``with`` block)."""

    def __init__(self, renderer: Renderer, every: float = 0.25) -> None:
        self.renderer = renderer
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, args=(every,), daemon=True,
                                       name="progress heartbeat")

    def _loop(self, every: float) -> None:
        while not self.done.wait(every):
            with contextlib.suppress(Exception):
                self.renderer.tick()

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join(2)


@contextlib.contextmanager
def interrupts(stop: Callable[[], None]) -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM call ``stop()`` (kill the running steps,
    silence the renderer) and raise KeyboardInterrupt in the main thread, once: a second
    signal does not break the clean-up the first one started; a third exits 130 at once.
    The previous handlers are restored after. Off the main thread: nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    seen = [0]

    def on_signal(signum: int, frame: FrameType | None) -> None:
        seen[0] += 1
        stop()
        if seen[0] == 1:
            raise KeyboardInterrupt
        if seen[0] >= 3:  # the clean-up hangs (a lock?): the store survives a kill anyway
            os.write(2, b"interrupted\n")
            os._exit(130)
        # the second: the first KeyboardInterrupt is unwinding; let it clean up

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stderr_writer(line: str) -> None:
    """One line on stderr, flushed at once (readers of a pipe see it now)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


@contextlib.contextmanager
def progress_for(mode: str, *, as_json: bool, console: Any) -> Iterator[PlainProgress]:
    """The renderer for ``--progress MODE`` on stderr, its heartbeat, and SIGINT/SIGTERM
    handling for the block: the running steps are killed, "interrupted", exit 130 (with
    --json, also ``{"ok": false, "interrupted": true}`` on stdout)."""
    from crossplan.api.running import stop_steps

    chosen = choose_mode(mode, terminal=console.is_terminal, as_json=as_json)
    shown = (LiveProgress(console) if chosen == "tty" else
             PlainProgress(stderr_writer, phases=chosen == "plain"))

    def stop() -> None:
        shown.stop()
        stop_steps()

    try:
        with interrupts(stop), Heartbeat(shown):
            yield shown
    except KeyboardInterrupt:
        stop()
        console.print("interrupted", highlight=False)
        if as_json:
            print(json.dumps({"ok": False, "interrupted": True, "exit_code": 130}))
        sys.stdout.flush()
        raise typer.Exit(130) from None
    finally:
        shown.stop()
