"""Bench results as values: samples -> min/median per (step, platform, mode) -> ratios.

Pure: no clock, no processes. Renders the summary as JSON, CSV and a rich table.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table

from crossplan.errors import RecipeError

__all__ = [
    "MODES",
    "BenchReport",
    "Group",
    "Prep",
    "Sample",
    "Skip",
    "Stat",
    "ratio",
    "summarize",
]

MODES = ("cross", "emulated", "native")
# The ratios every group reports, as (numerator mode, denominator mode).
RATIOS = (("emulated", "cross"), ("cross", "native"), ("emulated", "native"))


@dataclass(frozen=True)
class Sample:
    """One timed build. ``platform`` is what was built for (native: the build platform);
    ``compile_seconds`` is the compile alone (crossplan: the step's nodes; buildx: the RUN
    step), so ``seconds - compile_seconds`` is the tool's overhead."""

    step: str
    platform: str
    mode: str
    round: int
    seconds: float
    compile_seconds: float | None = None
    ok: bool = True
    error: str | None = None
    toolchain: str = ""

    @property
    def overhead_seconds(self) -> float | None:
        if self.compile_seconds is None:
            return None
        return max(0.0, self.seconds - self.compile_seconds)

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = round(self.seconds, 3)
        if self.compile_seconds is not None:
            d["compile_seconds"] = round(self.compile_seconds, 3)
        return d


@dataclass(frozen=True)
class Prep:
    """Untimed preparation (toolchain images, warm caches): what, for which mode, how long."""

    what: str
    mode: str
    seconds: float
    reused: bool = False

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class Skip:
    """A (step, platform, mode) that could not be measured here, and what would fix it."""

    step: str
    platform: str
    mode: str
    reason: str
    hint: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Stat:
    """Summary of one mode's samples for a (step, platform) group."""

    mode: str
    built_for: str
    n: int
    failures: int
    min: float | None
    median: float | None
    mean: float | None
    max: float | None
    compile_median: float | None
    overhead_median: float | None
    toolchain: str = ""

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float):
                d[k] = round(v, 3)
        return d


def ratio(num: float | None, den: float | None) -> float | None:
    """``num / den``, or None when either is missing or ``den`` is zero."""
    if num is None or den is None or den <= 0:
        return None
    return num / den


@dataclass(frozen=True)
class Group:
    """One (step, target platform): a Stat per measured mode and the ratios of medians."""

    step: str
    platform: str
    stats: Mapping[str, Stat]

    def median(self, mode: str) -> float | None:
        s = self.stats.get(mode)
        return s.median if s else None

    @property
    def ratios(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for num, den in RATIOS:
            r = ratio(self.median(num), self.median(den))
            if r is not None:
                out[f"{num}/{den}"] = r
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "platform": self.platform,
            "modes": {m: s.as_json() for m, s in self.stats.items()},
            "ratios": {k: round(v, 3) for k, v in self.ratios.items()},
        }


def _stat(mode: str, built_for: str, samples: Sequence[Sample]) -> Stat:
    good = [s for s in samples if s.ok]
    secs = [s.seconds for s in good]
    comp = [s.compile_seconds for s in good if s.compile_seconds is not None]
    over = [o for s in good if (o := s.overhead_seconds) is not None]
    med = statistics.median
    return Stat(
        mode=mode, built_for=built_for, n=len(good), failures=len(samples) - len(good),
        min=min(secs) if secs else None, median=med(secs) if secs else None,
        mean=statistics.fmean(secs) if secs else None, max=max(secs) if secs else None,
        compile_median=med(comp) if comp else None, overhead_median=med(over) if over else None,
        toolchain=next((s.toolchain for s in good if s.toolchain), ""),
    )


def summarize(
    samples: Iterable[Sample], groups: Sequence[tuple[str, str]], *, build_platform: str
) -> list[Group]:
    """A Group per (step, target platform), in the given order. Native samples (built for
    ``build_platform``) are the baseline of every group of their step."""
    by: dict[tuple[str, str, str], list[Sample]] = {}
    for s in samples:
        by.setdefault((s.step, s.platform, s.mode), []).append(s)
    out = []
    for step, plat in groups:
        stats: dict[str, Stat] = {}
        for mode in MODES:
            built_for = build_platform if mode == "native" else plat
            found = by.get((step, built_for, mode))
            if found:
                stats[mode] = _stat(mode, built_for, found)
        out.append(Group(step, plat, stats))
    return out


@dataclass(frozen=True)
class BenchReport:
    """Everything ``plan bench`` measured and how: the groups, raw samples, what was
    prepared outside the timings, what was skipped and why, and notes on method."""

    project: str
    build_platform: str
    modes: tuple[str, ...]
    repeat: int
    toolchain_cache: str  # cold | warm
    groups: tuple[Group, ...]
    samples: tuple[Sample, ...]
    prep: tuple[Prep, ...] = ()
    skipped: tuple[Skip, ...] = ()
    notes: tuple[str, ...] = ()
    machine: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every requested (step, platform, mode) was measured, and every round built."""
        return all(s.ok for s in self.samples) and not self.skipped

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "project": self.project,
            "build_platform": self.build_platform,
            "modes": list(self.modes),
            "repeat": self.repeat,
            "toolchain_cache": self.toolchain_cache,
            "machine": dict(self.machine),
            "results": [g.as_json() for g in self.groups],
            "samples": [s.as_json() for s in self.samples],
            "prep": [p.as_json() for p in self.prep],
            "skipped": [s.as_json() for s in self.skipped],
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BenchReport:
        """The report ``as_json`` wrote (e.g. ``plan bench --json > run.json``), re-summarized
        from its samples: to chart or tabulate a finished run again."""
        samples = [Sample(**{k: s.get(k) for k in Sample.__dataclass_fields__ if k in s})
                   for s in data["samples"]]
        groups = summarize(samples, [(g["step"], g["platform"]) for g in data["results"]],
                           build_platform=data["build_platform"])
        return cls(
            project=data["project"], build_platform=data["build_platform"],
            modes=tuple(data["modes"]), repeat=int(data["repeat"]),
            toolchain_cache=data["toolchain_cache"], groups=tuple(groups),
            samples=tuple(samples), prep=tuple(Prep(**p) for p in data.get("prep", [])),
            skipped=tuple(Skip(**k) for k in data.get("skipped", [])),
            notes=tuple(data.get("notes", [])), machine=dict(data.get("machine", {})),
        )

    def csv_text(self) -> str:
        """One row per (step, platform, mode): the summary, plus the group's ratios."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["step", "platform", "mode", "built_for", "n", "failures", "min_s", "median_s",
                    "mean_s", "max_s", "compile_median_s", "overhead_median_s",
                    "emulated_over_cross", "cross_over_native", "toolchain"])
        for g in self.groups:
            r = g.ratios
            for mode, s in g.stats.items():
                w.writerow([g.step, g.platform, mode, s.built_for, s.n, s.failures,
                            *(_num(v) for v in (s.min, s.median, s.mean, s.max,
                                                s.compile_median, s.overhead_median,
                                                r.get("emulated/cross"), r.get("cross/native"))),
                            s.toolchain])
        return buf.getvalue()

    def table(self) -> Table:
        """The rich table ``plan bench`` prints (seconds; ``x cross``: median / cross's)."""
        t = Table(title=f"plan bench: {self.project}, {self.repeat} round(s), toolchain caches "
                  f"{self.toolchain_cache} (seconds)", box=box.SIMPLE_HEAD, pad_edge=False,
                  header_style="bold")
        for col in ("step", "platform", "mode"):
            t.add_column(col, no_wrap=True)
        for col in ("n", "min", "median", "compile", "overhead", "x cross"):
            t.add_column(col, justify="right", no_wrap=True)
        for g in self.groups:
            cross = g.median("cross")
            for mode, s in g.stats.items():
                rel = ratio(s.median, cross) if mode != "cross" else None
                t.add_row(escape(g.step), s.built_for, _mode_label(mode), f"{s.n}", _fmt(s.min),
                          _fmt(s.median), _fmt(s.compile_median), _fmt(s.overhead_median),
                          f"{rel:.2f}x" if rel is not None else "")
            t.add_section()
        return t


def _mode_label(mode: str) -> str:
    colors = {"cross": "green", "emulated": "red", "native": "cyan"}
    return f"[{colors.get(mode, 'white')}]{mode}[/]"


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


def load_report(path: Path) -> BenchReport:
    """A report saved with ``plan bench --json > FILE``, re-summarized from its samples.
    A missing, unreadable or foreign file is a RecipeError naming it."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read the bench report ({exc.strerror or exc})",
                          hint="pass a file written by `plan bench --json > FILE`") from None
    except json.JSONDecodeError as exc:
        raise RecipeError(f"{path}:{exc.lineno}: not JSON ({exc.msg})",
                          hint="pass a file written by `plan bench --json > FILE`") from None
    try:
        if not isinstance(data, dict):
            raise TypeError("not an object")
        return BenchReport.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise RecipeError(f"{path}: not a `plan bench --json` report ({type(exc).__name__}: "
                          f"{exc})", hint="pass a file written by `plan bench --json > FILE`"
                          ) from None
