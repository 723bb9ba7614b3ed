"""Rounds: which (mode, job) pairs run, prepared once, then measured N times, interleaved.

Within a round every job's modes run back to back (so a load spike hits them alike), and
the mode order rotates from round to round (so no mode always goes first). Native jobs are
one per step (the build platform), run with that step's first target group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from crossplan.bench.modes import Job, Mode
from crossplan.bench.report import Prep, Sample, Skip
from crossplan.errors import CrossplanError
from crossplan.platforms import Platform

__all__ = ["Pair", "prepare_all", "run_rounds", "schedule"]

Pair = tuple[str, Job]  # (mode name, job)


def schedule(
    steps: Sequence[str], platforms: Sequence[Platform], modes: Sequence[str], build: Platform
) -> list[list[Pair]]:
    """One round's work, as blocks of pairs measured back to back: per (step, platform),
    its cross and emulated builds, plus the step's native build in its first block."""
    blocks: list[list[Pair]] = []
    for step in steps:
        for i, plat in enumerate(platforms):
            block: list[Pair] = []
            for mode in modes:
                if mode == "native":
                    if i == 0:
                        block.append((mode, Job(step, build)))
                else:
                    block.append((mode, Job(step, plat)))
            if block:
                blocks.append(block)
    return blocks


def prepare_all(
    blocks: Sequence[Sequence[Pair]], modes: Mapping[str, Mode],
    on_progress: Callable[[str], None] = lambda m: None,
) -> tuple[list[list[Pair]], list[Prep], list[Skip]]:
    """Prepare every pair once; the ones that cannot run here become Skips."""
    kept: list[list[Pair]] = []
    preps: list[Prep] = []
    skips: list[Skip] = []
    for block in blocks:
        ok: list[Pair] = []
        for name, job in block:
            on_progress(f"preparing {name} {job.step} for {job.platform}")
            try:
                preps += modes[name].prepare(job)
            except CrossplanError as exc:
                skips.append(Skip(job.step, str(job.platform), name, exc.message,
                                  exc.hint or ""))
                continue
            ok.append((name, job))
        if ok:
            kept.append(ok)
    return kept, preps, skips


def run_rounds(
    blocks: Sequence[Sequence[Pair]], modes: Mapping[str, Mode], repeat: int,
    on_sample: Callable[[Sample], None] = lambda s: None,
    on_progress: Callable[[str], None] = lambda m: None,
) -> list[Sample]:
    """Measure every pair ``repeat`` times, interleaved, rotating the mode order."""
    samples: list[Sample] = []
    for r in range(repeat):
        for block in blocks:
            shift = r % len(block)
            for name, job in [*block[shift:], *block[:shift]]:
                on_progress(f"round {r + 1}/{repeat}: {name} {job.step} for {job.platform}")
                sample = modes[name].measure(job, r + 1)
                samples.append(sample)
                on_sample(sample)
    return samples
