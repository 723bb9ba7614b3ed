"""`plan bench`: time cross, emulated and native builds; print, save and chart the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from crossplan.cli.common import CacheDir, JsonOpt, PlatformOpt, err, handles_errors, out
from crossplan.cli.progress import ProgressOpt, progress_for
from crossplan.errors import EXIT_ENVIRONMENT, RecipeError

if TYPE_CHECKING:
    from crossplan.bench import BenchReport, Sample

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("bench")(bench_cmd)


def _write_bench_files(report: BenchReport, csv_file: Path | None, charts: list[Path],
                       log_scale: bool) -> None:
    from crossplan.bench import write_chart

    if csv_file is not None:
        csv_file.write_text(report.csv_text())
    for path in charts:
        write_chart(report, path, log_scale=log_scale)


def _print_bench(report: BenchReport, csv_file: Path | None, charts: list[Path],
                 as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.as_json(), indent=2))
        return
    out.print(report.table())
    for note in report.notes:
        out.print(f"- {escape(note)}", highlight=False, soft_wrap=True)
    for written in [csv_file, *charts]:
        if written is not None:
            out.print(f"wrote {written}", highlight=False, soft_wrap=True)


def _print_bench_failures(report: BenchReport) -> None:
    for s in report.samples:
        if not s.ok and s.error:
            err.print(f"[bold red]failed:[/] {s.mode} {escape(s.step)} {s.platform}: "
                      f"{escape(s.error)}", highlight=False, soft_wrap=True)



def bench_cmd(
    plan: Annotated[Path, typer.Argument(help="plan.toml or its directory")] = Path("plan.toml"),
    steps: Annotated[list[str] | None, typer.Option(
        "--steps", help="steps to bench, comma-separated or repeated (default: every go, rust "
        "and c step)")] = None,
    platform: PlatformOpt = None,
    modes: Annotated[str, typer.Option(help="comma-separated: cross, emulated, native")] = (
        "cross,emulated,native"),
    repeat: Annotated[int, typer.Option(min=1, help="rounds; each from cold caches")] = 3,
    toolchain_cache: Annotated[str, typer.Option(
        help="cold: Go's std / zig's libc rebuilt every round; warm: pre-built once, only the "
        "project is cold")] = "cold",
    base: Annotated[str, typer.Option(
        help="base of the toolchain images bench makes for emulated Go/C builds ({arch}: "
        "Debian's arch name), e.g. busybox:1.36; needs a shell and what the build runs, e.g. "
        "make. Required for those builds unless --toolchain-image names one")] = "",
    keep_logs: Annotated[Path | None, typer.Option(
        "--keep-logs", help="keep build logs here (default: <store>/logs/bench-<time>-<pid>)")]
    = None,
    toolchain_image: Annotated[list[str] | None, typer.Option(
        "--toolchain-image", help="STEP=IMAGE: the image an emulated build of STEP runs in "
        "(required for Rust)")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="write the summary as CSV")]
    = None,
    chart: Annotated[list[Path] | None, typer.Option(
        help="write a chart: FILE.svg or FILE.png (repeat for both)")] = None,
    log_scale: Annotated[bool, typer.Option("--log-scale", help="log-scale chart")] = False,
    from_json: Annotated[Path | None, typer.Option(
        "--from-json", help="build nothing: re-render a report saved with --json (table, "
        "--csv, --chart)")] = None,
    cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
    progress: ProgressOpt = "auto",
) -> None:
    """Build steps cross-compiled (crossplan), emulated (buildx under QEMU, the naive
    Dockerfile) and native, from cold caches, N interleaved rounds; report min/median per
    (step, platform, mode), the emulated/cross ratio and where the time went."""
    from crossplan import bench as bench_api

    with handles_errors(as_json), progress_for(progress, as_json=as_json, console=err) as shown:
        if from_json is not None:
            report = bench_api.load_report(from_json)
            _write_bench_files(report, csv_file, chart or [], log_scale)
            _print_bench(report, csv_file, chart or [], as_json)
            _print_bench_failures(report)  # of the saved run; re-rendering it succeeded
            return
        if toolchain_cache not in ("cold", "warm"):
            raise RecipeError(f"unknown --toolchain-cache '{toolchain_cache}'",
                              hint="cold or warm")
        images: dict[str, str] = {}
        for item in toolchain_image or []:
            sid, sep, ref = item.partition("=")
            if not sep or not sid or not ref:
                raise RecipeError(f"bad --toolchain-image '{item}'", hint="use STEP=IMAGE")
            images[sid] = ref
        opts = bench_api.BenchOptions(
            steps=tuple(s.strip() for v in steps or [] for s in v.split(",") if s.strip()),
            platforms=platform, modes=tuple(m.strip() for m in modes.split(",") if m.strip()),
            repeat=repeat, toolchain_cache=toolchain_cache,  # type: ignore[arg-type]
            base=base, images=images, cache_dir=cache_dir, keep_logs=keep_logs,
        )
        def on_progress(message: str) -> None:  # one activity; a heartbeat while it lasts
            shown.begin("bench", message)

        def on_sample(s: Sample) -> None:
            shown.end("bench", f"{s.mode} {s.step} {s.platform}: "
                      + (f"{s.seconds:.1f}s" if s.ok else "failed"))

        report = bench_api.bench(plan, opts, on_sample=on_sample, on_progress=on_progress)
        _write_bench_files(report, csv_file, chart or [], log_scale)
    for sk in report.skipped:
        err.print(f"[yellow]skipped:[/] {sk.mode} {escape(sk.step)} {sk.platform}: "
                  f"{escape(sk.reason)}" + (f"\n  fix: {escape(sk.hint)}" if sk.hint else ""),
                  highlight=False, soft_wrap=True)
    _print_bench(report, csv_file, chart or [], as_json)
    _print_bench_failures(report)
    if any(not s.ok for s in report.samples):
        raise typer.Exit(1)
    if report.skipped:  # a requested mode could not be measured here
        err.print(f"[bold red]error:[/] {len(report.skipped)} requested measurement(s) "
                  "skipped (above)", highlight=False)
        raise typer.Exit(EXIT_ENVIRONMENT)
