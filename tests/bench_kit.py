"""A fake `plan bench` report (injected timings) shared by the unit and CLI tests."""

from __future__ import annotations

from crossplan.bench.report import BenchReport, Sample, summarize

__all__ = ["fake_samples", "report"]


def fake_samples() -> list[Sample]:
    """Two steps on arm64: cross ~10 s, emulated ~80 s, native ~9 s; one failed round."""
    out = []
    for r, (c, e, n) in enumerate([(10.0, 80.0, 9.0), (12.0, 100.0, 8.0), (11.0, 90.0, 10.0)], 1):
        out += [
            Sample("go", "linux/arm64", "cross", r, c, c - 1.0, toolchain="go1.27.3"),
            Sample("go", "linux/arm64", "emulated", r, e, e - 2.0, toolchain="img"),
            Sample("go", "linux/amd64", "native", r, n, n - 1.0),
            Sample("c", "linux/arm64", "cross", r, c / 10),
            Sample("c", "linux/arm64", "emulated", r, e / 10),
        ]
    out.append(Sample("c", "linux/arm64", "emulated", 4, 1.0, ok=False, error="boom"))
    return out


def report(samples: list[Sample] | None = None, repeat: int = 3) -> BenchReport:
    samples = fake_samples() if samples is None else samples
    groups = summarize(samples, [("go", "linux/arm64"), ("c", "linux/arm64")],
                       build_platform="linux/amd64")
    return BenchReport("demo", "linux/amd64", ("cross", "emulated", "native"), repeat, "cold",
                       tuple(groups), tuple(samples), notes=("noisy",))
