"""Memory independent of artifact size for images too: a 400 MB output copied into an
image, built and pushed from a fresh store, then exported from the store as a layout,
each a `plan` subprocess measured as test_streaming_memory measures the remote cache (peak
anonymous memory and peak RSS from /proc, polled every 5 ms). A layer past 8 MiB is
compressed into a file, not held (backends/oci/layers.py); pushes, exports and the SBOM
read blobs from files a MiB at a time."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from registry_proc import RegistryProc
from test_streaming_memory import SIZE, Measured, measured
from testkit import SCRUBBED

from crossplan.hashing import file_digest

pytestmark = pytest.mark.integration

# What a build holds whatever the layer's size: up to 64 MiB of tar (libdeflate compresses
# smaller tars whole), 8 MiB of blob before it goes to a file, the interpreter (~50 MiB).
ANON_LIMIT = 150 << 20  # as test_streaming_memory's
RSS_LIMIT = 200 << 20  # (RSS also counts file pages the process touched)
EXPORT_LIMIT = 150 << 20

_TOML = f"""\
[project]
name = "bigimage"
platforms = ["linux/amd64"]

[steps.big]
kind = "shell"
src = "src/"
command = ["sh", "-c", "head -c {SIZE} /dev/urandom > big.bin"]
outputs = ["big.bin"]
platform_independent = true

[steps.image]
kind = "image"
base = "scratch"
copy = [{{ from = "big", dest = "/data/" }}]
tags = ["REGISTRY/big/image:1"]
"""


@dataclass(frozen=True)
class Figures:
    push: Measured
    export: Measured
    layout: Path


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Figures]:
    tmp = tmp_path_factory.mktemp("image-memory")
    reg = RegistryProc(tmp / "registry").start()
    try:
        root = tmp / "proj"
        (root / "src").mkdir(parents=True)
        (root / "src" / "seed.txt").write_text("seed\n")
        (root / "plan.toml").write_text(_TOML.replace("REGISTRY", reg.address))
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        env.update(XDG_CACHE_HOME=str(tmp / "xdg"), CROSSPLAN_CACHE_DIR=str(tmp / "store"))
        push = measured(["run", str(root), "--push", "--json"], env, tmp)
        images = json.loads(push.stdout)["images"]
        assert images[0]["pushed"], push.stdout
        export = measured(["run", str(root), "--output", f"oci:{tmp / 'layout'}"], env, tmp)
        print(  # the figures for docs/benchmarks.md (pytest -s)
            f"\n{SIZE / 1e6:.0f} MB output in an image, peak RSS / peak anonymous: "
            f"build+push {push.peak_rss / 2**20:.0f} / {push.peak_anon / 2**20:.0f} MiB, "
            f"export {export.peak_rss / 2**20:.0f} / {export.peak_anon / 2**20:.0f} MiB",
            file=sys.stderr,
        )
        yield Figures(push, export, tmp / "layout")
    finally:
        reg.stop()


def test_the_exported_layout_holds_the_layer_whole(figures: Figures) -> None:
    import hashlib

    blobs = [p for p in (figures.layout / "blobs" / "sha256").iterdir()]
    big = [p for p in blobs if p.stat().st_size > SIZE]  # random bytes do not compress
    assert len(big) == 1
    with big[0].open("rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == big[0].name
    assert file_digest(big[0])  # (readable through the store's own hasher too)


def test_build_and_push_memory_does_not_grow_with_the_layer(figures: Figures) -> None:
    assert figures.push.peak_anon < ANON_LIMIT, f"{figures.push.peak_anon / 2**20:.0f} MiB"
    assert figures.push.peak_rss < RSS_LIMIT, f"{figures.push.peak_rss / 2**20:.0f} MiB"


def test_export_from_the_store_stays_under_150mb(figures: Figures) -> None:
    assert figures.export.peak_anon < EXPORT_LIMIT, f"{figures.export.peak_anon / 2**20:.0f} MiB"
    assert figures.export.peak_rss < EXPORT_LIMIT, f"{figures.export.peak_rss / 2**20:.0f} MiB"
