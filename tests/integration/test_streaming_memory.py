"""Memory independent of artifact size: pushing a 400 MB output to the remote cache and
substituting it into a fresh store stay well under 150 MB (memory caps only, never time caps).

One module fixture builds the output, then runs `plan cache push` and `plan cache pull` as
subprocesses against a private registry, each measured on its own: the peak RSS (VmHWM:
anonymous memory plus touched pages of mapped files) and the peak anonymous memory
(RssAnon), both from /proc/<pid>/status polled every 5 ms."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from registry_proc import RegistryProc
from testkit import SCRUBBED, plan_argv

from crossplan.hashing import file_digest

pytestmark = pytest.mark.integration

SIZE = 400_000_000
LIMIT = 150 << 20
# Peak RSS also counts file-backed pages (libraries, page cache a child touches): 74-91 MiB.
# Anonymous memory keeps the 150 MiB limit; RSS gets headroom, still half the 400 MB blob
# (it was 963-1204 MiB before streaming).
RSS_LIMIT = 200 * 2**20
REPO = "big/plan-cache"

_TOML = f"""\
[project]
name = "big"
platforms = ["linux/amd64"]

[steps.big]
kind = "shell"
src = "src/"
command = ["sh", "-c", "head -c {SIZE} /dev/urandom > big.bin"]
outputs = ["big.bin"]
platform_independent = true
"""


@dataclass(frozen=True)
class Measured:
    stdout: str
    peak_rss: int  # bytes
    peak_anon: int  # bytes


def _status(pid: int) -> tuple[int, int]:
    """(RssAnon, VmHWM) of a running process, in bytes (0 once it is gone)."""
    anon = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    anon = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except OSError:
        pass
    return anon, hwm


def measured(args: list[str], env: dict[str, str], cwd: Path) -> Measured:
    """One `plan` subprocess: its stdout, peak RSS and peak anonymous memory."""
    out, err = cwd / "stdout.txt", cwd / "stderr.txt"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(plan_argv(*args), cwd=cwd, env=env, stdout=fo, stderr=fe)
        peak = [0, 0]  # anonymous, high-water RSS
        done = threading.Event()

        def poll() -> None:
            while not done.wait(0.005):
                anon, hwm = _status(proc.pid)
                peak[0], peak[1] = max(peak[0], anon), max(peak[1], hwm)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        _, status, _usage = os.wait4(proc.pid, 0)
        done.set()
        poller.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, err.read_text() + out.read_text()
    # Not wait4's ru_maxrss: Linux carries the high-water mark of the memory the child had
    # before exec into it, and Popen's vfork child borrows this (pytest) process's: in a
    # full CI run that read the test runner's 237 MiB for both commands. VmHWM is the
    # exec'd program's own (monotonic; polled every 5 ms until it exits).
    return Measured(out.read_text(), peak[1], peak[0])


@dataclass(frozen=True)
class Figures:
    push: Measured
    pull: Measured
    store: Path


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Figures]:
    tmp = tmp_path_factory.mktemp("streaming")
    root = tmp / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "seed.txt").write_text("seed\n")
    (root / "plan.toml").write_text(_TOML)
    base = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    base["XDG_CACHE_HOME"] = str(tmp / "xdg")
    s1 = {**base, "CROSSPLAN_CACHE_DIR": str(tmp / "s1")}
    s2 = {**base, "CROSSPLAN_CACHE_DIR": str(tmp / "s2")}
    reg = RegistryProc(tmp / "registry").start()
    try:
        remote = f"{reg.address}/{REPO}"
        measured(["run", str(root), "--json"], s1, tmp)
        push = measured(["cache", "push", "-f", str(root), "--cache-remote", remote, "--json"],
                        s1, tmp)
        assert set(json.loads(push.stdout)["nodes"].values()) == {"pushed"}
        pull = measured(["cache", "pull", "-f", str(root), "--cache-remote", remote, "--json"],
                        s2, tmp)
        assert set(json.loads(pull.stdout)["nodes"].values()) == {"pulled"}
        print(  # the figures for docs/benchmarks.md (pytest -s)
            f"\n{SIZE / 1e6:.0f} MB blob, peak RSS / peak anonymous: "
            f"push {push.peak_rss / 2**20:.0f} / {push.peak_anon / 2**20:.0f} MiB, "
            f"pull {pull.peak_rss / 2**20:.0f} / {pull.peak_anon / 2**20:.0f} MiB",
            file=sys.stderr,
        )
        yield Figures(push, pull, tmp / "s2")
    finally:
        reg.stop()


def test_pull_substitutes_the_400mb_blob_intact(figures: Figures) -> None:
    blobs = [p for p in (figures.store / "blobs").rglob("*") if p.is_file()]
    big = [p for p in blobs if p.stat().st_size == SIZE]
    assert len(big) == 1 and file_digest(big[0]) == big[0].name
    assert not any((figures.store / "tmp").iterdir())


def test_pull_peak_rss_stays_under_200mb(figures: Figures) -> None:
    assert figures.pull.peak_rss < RSS_LIMIT, f"{figures.pull.peak_rss / 2**20:.0f} MiB"


def test_push_peak_anonymous_memory_stays_under_150mb(figures: Figures) -> None:
    assert figures.push.peak_anon < LIMIT, f"{figures.push.peak_anon / 2**20:.0f} MiB"


def test_push_peak_rss_stays_under_200mb(figures: Figures) -> None:
    assert figures.push.peak_rss < RSS_LIMIT, f"{figures.push.peak_rss / 2**20:.0f} MiB"
