"""plan bench, pure parts: summaries and ratios from injected timings, JSON/CSV/table, the
chart (Agg), buildx progress parsing, the naive Dockerfile, warm-up commands, scheduling."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from bench_kit import report
from rich.console import Console

from crossplan.backends.dockerfile import compile_stage
from crossplan.backends.toolchains.base import BuildAction
from crossplan.bench.chart import write_chart
from crossplan.bench.emulated import naive_dockerfile, run_step_seconds
from crossplan.bench.images import base_for, warm_script
from crossplan.bench.modes import Job
from crossplan.bench.report import BenchReport, Sample, ratio
from crossplan.bench.rounds import run_rounds, schedule
from crossplan.bench.toolcache import warm_commands
from crossplan.errors import RecipeError
from crossplan.platforms import Platform
from crossplan.recipes import from_dict
from crossplan.recipes.models import Recipe

ARM64 = Platform.parse("linux/arm64")
AMD64 = Platform.parse("linux/amd64")


def test_summary_min_median_and_ratios() -> None:
    go, c = report().groups
    cross, emu, native = go.stats["cross"], go.stats["emulated"], go.stats["native"]
    assert (cross.n, cross.min, cross.median, cross.max) == (3, 10.0, 11.0, 12.0)
    assert cross.compile_median == 10.0 and cross.overhead_median == 1.0
    assert emu.median == 90.0 and emu.overhead_median == 2.0 and emu.toolchain == "img"
    assert native.built_for == "linux/amd64" and native.median == 9.0
    assert go.ratios == pytest.approx({"emulated/cross": 90 / 11, "cross/native": 11 / 9,
                                       "emulated/native": 10.0})
    # failed samples are counted, not timed; no native samples for c -> no such ratios
    assert c.stats["emulated"].failures == 1 and c.stats["emulated"].n == 3
    assert set(c.ratios) == {"emulated/cross"} and "native" not in c.stats
    assert c.stats["cross"].compile_median is None


@pytest.mark.parametrize(("num", "den", "want"), [
    (10.0, 2.0, 5.0), (None, 2.0, None), (1.0, None, None), (1.0, 0.0, None),
])
def test_ratio(num: float | None, den: float | None, want: float | None) -> None:
    assert ratio(num, den) == want


def test_json_shape() -> None:
    data = json.loads(json.dumps(report().as_json()))
    assert data["ok"] is False  # one failed sample
    assert set(data) >= {"results", "samples", "prep", "skipped", "notes", "machine", "repeat",
                         "toolchain_cache", "build_platform", "modes"}
    go = data["results"][0]
    assert go["step"] == "go" and go["platform"] == "linux/arm64"
    assert set(go["modes"]) == {"cross", "emulated", "native"}
    assert go["modes"]["cross"]["median"] == 11.0
    assert go["ratios"]["emulated/cross"] == pytest.approx(8.182, abs=1e-3)
    assert len(data["samples"]) == 16 and data["samples"][0]["mode"] == "cross"


def test_json_round_trip() -> None:
    rep = report()
    again = BenchReport.from_json(json.loads(json.dumps(rep.as_json())))
    assert again.as_json() == rep.as_json()


def test_csv_one_row_per_mode() -> None:
    rows = list(csv.DictReader(io.StringIO(report().csv_text())))
    assert [(r["step"], r["mode"]) for r in rows] == [
        ("go", "cross"), ("go", "emulated"), ("go", "native"), ("c", "cross"), ("c", "emulated")]
    assert rows[0]["median_s"] == "11.000" and rows[0]["emulated_over_cross"] == "8.182"
    assert rows[2]["built_for"] == "linux/amd64"


def test_table_renders() -> None:
    console = Console(record=True, width=120)
    console.print(report().table())
    text = console.export_text()
    assert "emulated" in text and "8.18x" in text and "linux/amd64" in text


@pytest.mark.parametrize("log_scale", [False, True])
def test_svg_chart_has_labels_units_legend(tmp_path: Path, log_scale: bool) -> None:
    path = write_chart(report(), tmp_path / "bench.svg", log_scale=log_scale)
    svg = path.read_text()
    ET.fromstring(svg)  # well-formed
    for text in ("seconds", "step and target platform", "cross (crossplan, host toolchain)",
                 "emulated (buildx, QEMU)", "native (linux/amd64", "emulated / cross = 8.2x",
                 "crossplan bench (demo)"):
        assert text in svg, text
    assert ("log scale" in svg) is log_scale


def test_svg_chart_is_deterministic(tmp_path: Path) -> None:
    a = write_chart(report(), tmp_path / "a.svg").read_bytes()
    b = write_chart(report(), tmp_path / "b.svg").read_bytes()
    assert a == b


def test_png_chart(tmp_path: Path) -> None:
    data = write_chart(report(repeat=1), tmp_path / "sub" / "bench.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_chart_refuses_other_formats(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"svg or \.png"):
        write_chart(report(), tmp_path / "bench.jpg")


PROGRESS = """\
#1 [internal] load build definition from Dockerfile
#1 DONE 0.0s
#7 [build-hello-go 3/4] COPY src/hello-go/ ./
#7 DONE 0.1s
#8 [build-hello-go 4/4] RUN set -e; case "$TARGETPLATFORM" in   linux/arm64) export GOOS=linux
#8 12.3 compiling
#8 [build-hello-go 4/4] RUN set -e; case "$TARGETPLATFORM" in   linux/arm64) export GOOS=linux
#8 DONE 85.25s
#9 [stage-1 1/1] COPY --from=build-hello-go /out/hello-go/ /
#9 DONE 0.2s
"""


def test_run_step_seconds() -> None:
    assert run_step_seconds(PROGRESS, "build-hello-go") == 85.25
    assert run_step_seconds(PROGRESS.replace("[build-", "[linux/arm64 build-"),
                            "build-hello-go") == 85.25
    assert run_step_seconds(PROGRESS, "build-other") is None


def _recipe() -> Recipe:
    return from_dict({
        "project": {"name": "demo"},
        "steps": {"go": {"kind": "go", "binary": "app"},
                  "c": {"kind": "c", "src": ".", "build": ["make"], "outputs": ["x"],
                        "compiler": "zig"},
                  "rs": {"kind": "rust", "bin": "x"}},
    }, file=Path("/nonexistent/plan.toml"))


def test_naive_dockerfile_runs_on_the_target_without_cache_mounts() -> None:
    r = _recipe()
    stage = compile_stage("go", r.steps["go"], (ARM64,), image="tc:1")
    text = naive_dockerfile("demo", dataclasses.replace(stage, caches=()), ARM64)
    assert "FROM tc:1 AS build-go" in text and "$BUILDPLATFORM" not in text
    assert "--mount" not in text and "linux/arm64) export GOOS=linux GOARCH=arm64" in text
    assert "FROM scratch" in text and "COPY --from=build-go /out/go/ /" in text


def test_warm_scripts() -> None:
    r = _recipe()
    steps = r.steps
    go = warm_script(compile_stage("go", steps["go"], (ARM64,), image="i"), ARM64)
    c = warm_script(compile_stage("c", steps["c"], (ARM64,), image="i"), ARM64)
    rs = warm_script(compile_stage("rs", steps["rs"], (ARM64,), image="i"), ARM64)
    assert go is not None and "go build -trimpath $(go list -deps -f" in go
    assert "{{if .Standard}}" in go and go.endswith("rm -rf /tmp/warm-src")
    assert c is not None and "zig cc -target aarch64-linux-musl" in c and "warm.c" in c
    assert rs is None


def test_warm_commands() -> None:
    go = BuildAction(commands=(("/go/bin/go", "build", "-o", "x", "."),), env={"GOCACHE": "/c"})
    zig = BuildAction(commands=(("chmod", "0755", "cc"), ("make",)),
                      env={"CC": "/w/cc", "ZIG_GLOBAL_CACHE_DIR": "/z"})
    gcc = BuildAction(commands=(("make",),), env={"CC": "aarch64-linux-gnu-gcc"})
    ((sh, dash_c, line),) = warm_commands("go", go, "./cmd/x") or []
    assert line.startswith("/go/bin/go build -trimpath $(/go/bin/go list -deps -f ")
    assert line.endswith(" ./cmd/x)") and (sh, dash_c) == ("sh", "-c")
    assert warm_commands("c", zig) == [("chmod", "0755", "cc"),
                                       ("sh", "-c", "$CC $CFLAGS $LDFLAGS -o warm warm.c")]
    assert warm_commands("c", gcc) is None
    assert warm_commands("rust", BuildAction(commands=(("cargo",),))) is None


def test_base_for_fills_debian_arch() -> None:
    assert base_for("x/debian:bookworm-{arch}", Platform.parse("linux/arm/v7")) == (
        "x/debian:bookworm-armhf")
    assert base_for("busybox", ARM64) == "busybox"


def test_schedule_interleaves_and_runs_native_once_per_step() -> None:
    blocks = schedule(["a", "b"], [ARM64, Platform.parse("linux/riscv64")],
                      ["cross", "emulated", "native"], AMD64)
    assert [[(m, j.step, str(j.platform)) for m, j in b] for b in blocks] == [
        [("cross", "a", "linux/arm64"), ("emulated", "a", "linux/arm64"),
         ("native", "a", "linux/amd64")],
        [("cross", "a", "linux/riscv64"), ("emulated", "a", "linux/riscv64")],
        [("cross", "b", "linux/arm64"), ("emulated", "b", "linux/arm64"),
         ("native", "b", "linux/amd64")],
        [("cross", "b", "linux/riscv64"), ("emulated", "b", "linux/riscv64")],
    ]


class FakeMode:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def prepare(self, job: Job) -> list[object]:
        return []

    def measure(self, job: Job, round_: int) -> Sample:
        self.log.append(f"{round_}:{self.name}")
        return Sample(job.step, str(job.platform), self.name, round_, 1.0)


def test_rounds_rotate_the_mode_order() -> None:
    log: list[str] = []
    modes = {m: FakeMode(m, log) for m in ("cross", "emulated", "native")}
    blocks = schedule(["a"], [ARM64], list(modes), AMD64)
    samples = run_rounds(blocks, modes, 3)  # type: ignore[arg-type]
    assert log == ["1:cross", "1:emulated", "1:native", "2:emulated", "2:native", "2:cross",
                   "3:native", "3:cross", "3:emulated"]
    assert len(samples) == 9 and {s.round for s in samples} == {1, 2, 3}


def test_warm_toolcache_rust_has_nothing_to_warm(tmp_path: Path) -> None:
    """Rust's std ships prebuilt: warming is a no-op, and the toolchain still sees the crate
    (its Cargo.toml names the binary), so warm mode benches Rust steps instead of skipping
    them (a regression: the crate was not copied and every host Rust job was skipped)."""
    from testkit import EXAMPLES

    from crossplan.backends.toolchains.discover import toolchain_for
    from crossplan.bench.toolcache import warm_toolcache
    from crossplan.recipes import load

    recipe = load(EXAMPLES / "hello" / "full.toml")
    step = recipe.steps["hello-rust"]
    tc = toolchain_for(step, recipe.toolchains, tmp_path / "store", {})
    dest = tmp_path / "warm" / "toolcache"
    assert warm_toolcache(tc, step, ARM64, dest, build=AMD64, environ={},
                          src=recipe.root / "rust") is False
