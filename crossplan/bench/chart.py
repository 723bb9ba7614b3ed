"""The bench chart: grouped bars per (step, platform), one bar per mode, seconds on y.

matplotlib with the Agg canvas (no display, no pyplot state); ``.svg`` or ``.png`` by suffix.
Bars are medians, whiskers span min..max, each group is annotated with emulated/cross.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crossplan.bench.report import BenchReport
from crossplan.errors import EnvironmentProblem, RecipeError

__all__ = ["COLORS", "FORMATS", "write_chart"]

FORMATS = ("svg", "png")
COLORS = {"cross": "#2a9d8f", "native": "#457b9d", "emulated": "#e76f51"}
_ORDER = ("native", "cross", "emulated")  # baseline first, then the contenders
_LABELS = {
    "cross": "cross (crossplan, host toolchain)",
    "native": "native ({build}, host toolchain)",
    "emulated": "emulated (buildx, QEMU)",
}


def _figure() -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise EnvironmentProblem(
            "--chart needs matplotlib", hint="pip install 'crossplan[bench]' (or matplotlib)"
        ) from None
    fig = Figure(figsize=(10, 6), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def write_chart(
    report: BenchReport, path: str | Path, *, log_scale: bool = False, title: str | None = None
) -> Path:
    """Draw ``report`` into ``path`` (.svg or .png); returns the path."""
    out = Path(path)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise RecipeError(f"cannot write a chart as '{out.suffix or out.name}'",
                          hint="use a .svg or .png file name, e.g. --chart bench.svg")
    groups = [g for g in report.groups if g.stats]
    modes = [m for m in _ORDER if m in report.modes and any(m in g.stats for g in groups)]
    fig = _figure()
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(modes))
    tops: list[float] = []
    group_top: dict[int, float] = {}  # highest whisker (or bar) per group
    for i, mode in enumerate(modes):
        xs, heights, lo, hi, gis = [], [], [], [], []
        for gi, g in enumerate(groups):
            s = g.stats.get(mode)
            if s is None or s.median is None:
                continue
            xs.append(gi - 0.4 + width * (i + 0.5))
            gis.append(gi)
            heights.append(s.median)
            lo.append(s.median - (s.min if s.min is not None else s.median))
            hi.append((s.max if s.max is not None else s.median) - s.median)
        if not xs:
            continue
        label = _LABELS[mode].format(build=report.build_platform)
        ax.bar(xs, heights, width * 0.92, label=label, color=COLORS[mode],
               yerr=[lo, hi] if report.repeat > 1 else None, capsize=3,
               error_kw={"elinewidth": 0.8, "ecolor": "#333333"})
        for x, h, e in zip(xs, heights, hi, strict=True):
            # above the whisker, not the bar: a label never sits on its own error bar
            ax.annotate(_secs(h), (x, h + e), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=8)
        tops += [h + e for h, e in zip(heights, hi, strict=True)]
        for gi_x, top_x in zip(gis, (h + e for h, e in zip(heights, hi, strict=True)),
                               strict=True):
            group_top[gi_x] = max(group_top.get(gi_x, 0.0), top_x)
    ax.set_xticks(range(len(groups)), [f"{g.step}\n{g.platform}" for g in groups])
    ax.set_xlabel("step and target platform")
    cold = "cold caches" if report.toolchain_cache == "cold" else "cold project, warm toolchain"
    ax.set_ylabel(f"build time ({cold}), seconds" + (", log scale" if log_scale else ""))
    if log_scale:
        ax.set_yscale("log")
    top = max(tops, default=1.0)
    ax.set_ylim(top=top * (3.0 if log_scale else 1.22))
    if not log_scale:
        ax.set_ylim(bottom=0)
    for gi, g in enumerate(groups):
        r = g.ratios.get("emulated/cross")
        if r is not None:
            # above the group's highest value label (8 pt text + 2 pt padding)
            ax.annotate(f"emulated / cross = {r:.1f}x", (gi, group_top.get(gi, 0.0)),
                        xytext=(0, 15),
                        textcoords="offset points", ha="center", fontsize=9, weight="bold")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fig.legend(loc="outside lower center", ncols=max(1, len(modes)), fontsize=9,
               title="mode (bar: median of the rounds; whiskers: min to max)"
               if report.repeat > 1 else "mode", title_fontsize=8, frameon=False)
    ax.set_title(title or _title(report), fontsize=11)
    out.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"Date": None} if fmt == "svg" else {}
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "crossplan-bench"}):  # stable SVG ids
        fig.savefig(out, format=fmt, metadata=metadata)
    return out


def _title(report: BenchReport) -> str:
    rounds = "1 round" if report.repeat == 1 else f"{report.repeat} rounds"
    return (f"crossplan bench ({report.project}): emulated vs cross-compiled builds, "
            f"{rounds}, toolchain caches {report.toolchain_cache}")


def _secs(v: float) -> str:
    """Two or three significant digits: 2173 s, 21.9 s, 0.15 s."""
    if v >= 100:
        return f"{v:.0f} s"
    return f"{v:.1f} s" if v >= 1 else f"{v:.2f} s"

