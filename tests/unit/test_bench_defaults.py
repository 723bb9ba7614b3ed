"""`plan bench` on a user's machine: no test-only default base (a clear error naming --base
instead), a skipped requested measurement is not success (ok false, exit 3), and the logs a
failure points to are kept (under the store's logs dir, or --keep-logs DIR)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import crossplan.bench as bench_api
from crossplan.bench import BenchOptions, BenchReport, Sample, Skip, bench
from crossplan.bench.host import HostMode
from crossplan.bench.images import DEFAULT_BASE, ImageMaker
from crossplan.bench.modes import BenchContext, Job
from crossplan.errors import EnvironmentProblem
from crossplan.platforms import Platform
from crossplan.recipes import load

REPO = Path(__file__).resolve().parents[2]
FULL = REPO / "examples" / "hello" / "full.toml"
ARM64 = Platform.parse("linux/arm64")


def test_no_test_only_default_base() -> None:
    assert DEFAULT_BASE == "" and BenchOptions().base == ""
    assert BenchContext.__dataclass_fields__["base"].default == ""


def test_emulated_without_base_fails_before_any_round_naming_base(tmp_path: Path) -> None:
    opts = BenchOptions(steps=("hello-go", "hello-c"), platforms="linux/arm64",
                        modes=("cross", "emulated"), cache_dir=tmp_path / "store")
    with pytest.raises(EnvironmentProblem) as err:
        bench(FULL, opts, workdir=tmp_path / "work")
    assert "--base IMAGE" in err.value.message and err.value.exit_code == 3
    assert "hello-go, hello-c" in err.value.message
    assert err.value.hint is not None and "--toolchain-image" in err.value.hint
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


def test_named_toolchain_images_need_no_base(tmp_path: Path) -> None:
    """Only steps whose images bench would make need --base (here: none; fake modes)."""
    opts = BenchOptions(steps=("hello-go",), platforms="linux/arm64", modes=("cross",),
                        repeat=1, cache_dir=tmp_path / "store")

    class Cross:
        name = "cross"

        def prepare(self, job: Job) -> list[object]:
            return []

        def measure(self, job: Job, round_: int) -> Sample:
            return Sample(job.step, str(job.platform), "cross", round_, 1.0, 0.5)

    rep = bench(FULL, opts, modes={"cross": Cross()}, workdir=tmp_path)  # type: ignore[dict-item]
    assert rep.ok


def test_image_maker_without_base_names_base(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="pass --base IMAGE"):
        ImageMaker(tmp_path).toolchain("go", "1.27.3", ARM64)


def _report(skipped: tuple[Skip, ...], ok: bool = True) -> BenchReport:
    sample = Sample("hello-go", "linux/arm64", "cross", 1, 2.0, 1.5, ok=ok,
                    error=None if ok else "boom")
    return BenchReport(project="p", build_platform="linux/amd64", modes=("cross", "emulated"),
                       repeat=1, toolchain_cache="cold", groups=(), samples=(sample,),
                       skipped=skipped)


@pytest.mark.parametrize(("skipped", "ok", "code"), [
    ((), True, 0),
    ((Skip("hello-go", "linux/arm64", "emulated", "no qemu", "install it"),), True, 3),
    ((Skip("hello-go", "linux/arm64", "emulated", "no qemu", "install it"),), False, 1),
])
def test_cli_exit_codes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                        skipped: tuple[Skip, ...], ok: bool, code: int) -> None:
    from crossplan.cli import app

    monkeypatch.setattr(bench_api, "bench", lambda *a, **k: _report(skipped, ok))
    res = CliRunner().invoke(app, ["bench", str(FULL), "--json", "--cache-dir",
                                   str(tmp_path / "store")])
    assert res.exit_code == code, res.output
    if skipped:
        assert '"ok": false' in res.stdout


def test_cli_passes_keep_logs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from crossplan.cli import app

    seen: list[BenchOptions] = []

    def fake(plan: object, opts: BenchOptions, **_: object) -> BenchReport:
        seen.append(opts)
        return _report(())

    monkeypatch.setattr(bench_api, "bench", fake)
    res = CliRunner().invoke(app, ["bench", str(FULL), "--keep-logs", str(tmp_path / "logs")])
    assert res.exit_code == 0, res.output
    assert seen[0].keep_logs == tmp_path / "logs" and seen[0].base == ""


def test_failed_round_logs_are_kept_and_named(tmp_path: Path) -> None:
    """The round's temporary store goes away; its logs move to the kept dir and the error
    names them there (it used to point into the deleted temp dir)."""
    ctx = BenchContext(load(FULL), tmp_path / "store", tmp_path / "work", Platform.parse(
        "linux/amd64"), log_dir=tmp_path / "kept")
    mode = HostMode(ctx, "cross")
    store = tmp_path / "work" / "cross-x" / "store"
    (store / "logs").mkdir(parents=True)
    (store / "logs" / "hello-go@linux-arm64.log").write_text("compile error\n")
    error = mode._keep_logs(store, Job("hello-go", ARM64), 2,
                            f"step failed; log: {store / 'logs' / 'hello-go@linux-arm64.log'}")
    kept = tmp_path / "kept" / f"cross-hello-go-{ARM64.slug}-2"
    assert (kept / "hello-go@linux-arm64.log").read_text() == "compile error\n"
    assert str(kept / "hello-go@linux-arm64.log") in error and str(store) not in error


def test_default_log_dir_is_under_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    seen: list[BenchContext] = []

    class Cross:
        name = "cross"

        def prepare(self, job: Job) -> list[object]:
            return []

        def measure(self, job: Job, round_: int) -> Sample:
            return Sample(job.step, str(job.platform), "cross", round_, 1.0, 0.5)

    def fake_modes(ctx: BenchContext, names: tuple[str, ...]) -> dict[str, object]:
        seen.append(ctx)
        return {"cross": Cross()}

    monkeypatch.setattr(bench_api, "make_modes", fake_modes)
    opts = BenchOptions(steps=("hello-go",), platforms="linux/arm64", modes=("cross",),
                        repeat=1, cache_dir=tmp_path / "store")
    bench(FULL, opts)
    (ctx,) = seen
    assert ctx.logs.parent == tmp_path / "store" / "logs" and ctx.logs.name.startswith("bench-")
