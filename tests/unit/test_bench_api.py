"""plan bench's orchestration with fake modes and a fake clock: steps and platforms chosen,
skips with their fixes, the report's shape; and the CLI's usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossplan.bench import BenchOptions, bench, cold_environ
from crossplan.bench.modes import Job
from crossplan.bench.report import Prep, Sample
from crossplan.errors import EnvironmentProblem, RecipeError

REPO = Path(__file__).resolve().parents[2]
FULL = REPO / "examples" / "hello" / "full.toml"
SECONDS = {"cross": 10.0, "emulated": 95.0, "native": 9.5}


class Fake:
    """Times come from the table above; steps in ``unavailable`` cannot run in this mode."""

    def __init__(self, name: str, unavailable: tuple[str, ...] = ()) -> None:
        self.name = name
        self.unavailable = unavailable
        self.prepared: list[Job] = []

    def prepare(self, job: Job) -> list[Prep]:
        if job.step in self.unavailable:
            raise EnvironmentProblem(f"no image for {job.step}", hint="make one")
        self.prepared.append(job)
        return [Prep(f"{self.name} {job.step}", self.name, 1.0)]

    def measure(self, job: Job, round_: int) -> Sample:
        secs = SECONDS[self.name] + round_
        return Sample(job.step, str(job.platform), self.name, round_, secs, secs - 0.5)


def test_bench_with_fake_modes(tmp_path: Path) -> None:
    modes = {"cross": Fake("cross"), "emulated": Fake("emulated", ("hello-rust",)),
             "native": Fake("native")}
    rep = bench(FULL, BenchOptions(platforms="linux/arm64", repeat=2), modes=modes,
                workdir=tmp_path)
    assert [(g.step, g.platform) for g in rep.groups] == [
        ("hello-go", "linux/arm64"), ("hello-rust", "linux/arm64"), ("hello-c", "linux/arm64")]
    go = rep.groups[0]
    assert go.stats["emulated"].median == 96.5 and go.stats["cross"].min == 11.0
    assert go.ratios["emulated/cross"] == pytest.approx(96.5 / 11.5)
    assert go.stats["native"].built_for != "linux/arm64"
    rust = rep.groups[1]
    assert "emulated" not in rust.stats and "emulated/cross" not in rust.ratios
    assert [(s.step, s.mode, s.reason, s.hint) for s in rep.skipped] == [
        ("hello-rust", "emulated", "no image for hello-rust", "make one")]
    assert len(rep.samples) == 2 * (3 * 3 - 1)
    assert not rep.ok and rep.as_json()["ok"] is False  # a requested mode was skipped
    assert len(rep.prep) == 8
    data = rep.as_json()
    assert data["repeat"] == 2 and data["toolchain_cache"] == "cold"
    assert data["skipped"][0]["mode"] == "emulated" and data["machine"]["cpus"]


def test_bench_steps_and_default_platforms(tmp_path: Path) -> None:
    modes = {"cross": Fake("cross")}
    rep = bench(FULL, BenchOptions(steps=("hello-c",), modes=("cross",), repeat=1), modes=modes,
                workdir=tmp_path)
    # the project's platforms other than the build platform (amd64 here)
    assert [g.step for g in rep.groups] == ["hello-c"]
    assert all(g.platform != rep.build_platform for g in rep.groups)


@pytest.mark.parametrize(("opts", "match"), [
    (BenchOptions(steps=("nope",)), "unknown step"),
    (BenchOptions(modes=("qemu",)), "unknown mode"),
    (BenchOptions(repeat=0), "at least 1"),
])
def test_bench_usage_errors(tmp_path: Path, opts: BenchOptions, match: str) -> None:
    with pytest.raises(RecipeError, match=match):
        bench(FULL, opts, modes={}, workdir=tmp_path)


def test_cold_environ_drops_shared_caches() -> None:
    env = {"PATH": "/bin", "CROSSPLAN_TOOLCACHE_DIR": "/shared", "CROSSPLAN_CACHE_REMOTE": "r/x",
           "CROSSPLAN_CACHE_MODE": "read", "CROSSPLAN_TOOLCHAINS_DIR": "/wheels"}
    assert cold_environ(env) == {"PATH": "/bin", "CROSSPLAN_TOOLCHAINS_DIR": "/wheels"}
