"""Before an image is assembled: every ELF file it copies must run on that platform and on
the image's base (loader, glibc version, shared libraries), or the step fails naming the
binary and the fix. Nothing is written or pushed before this passes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath

from crossplan.backends.elf import check_elf, read_elf
from crossplan.backends.elf_base import (
    SCRATCH,
    BaseRuntime,
    check_against_base,
    runtime_from_layers,
)
from crossplan.backends.oci.spec import BaseImage
from crossplan.cache.store import Entry, Store
from crossplan.images.protocol import dep_entry
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import PlannedNode
from crossplan.platforms import Platform
from crossplan.recipes.models import ImageStep

__all__ = ["STATIC_BASES", "base_runtime", "check_image_binaries", "is_static_base"]

# Bases with no dynamic loader and no libc: only static binaries start on them.
STATIC_BASES = ("scratch", "gcr.io/distroless/static", "distroless/static")
_ELF_MAGIC = b"\x7fELF"
_memo: dict[str, BaseRuntime] = {}


def is_static_base(base: str) -> bool:
    name = base.split("@")[0].rsplit(":", 1)[0] if "/" in base or "@" in base else base
    return any(name == b or name.endswith("/" + b) or name.startswith(b + "-")
               for b in STATIC_BASES) or "distroless/static" in name


def base_runtime(base: str, image: BaseImage | None) -> BaseRuntime | None:
    """The base as the loader sees it: scratch/distroless-static have nothing; a resolved
    base is read from its layers (memoized by manifest digest); None: not known here."""
    if image is None:
        return SCRATCH if base == "scratch" or is_static_base(base) else None
    if image.digest not in _memo:
        _memo[image.digest] = runtime_from_layers(
            image.name or base, (blob.read() for blob in image.layers))
    return _memo[image.digest]


def check_image_binaries(
    pn: PlannedNode, deps: Mapping[NodeId, Entry], store: Store,
    bases: Mapping[Platform, BaseRuntime | None], *, file: str | None = None,
) -> int:
    """Check each ELF file the image step copies, per platform, against that platform and
    ``bases[platform]`` (None: the base is unknown here, only the machine is checked).
    Returns how many files were checked; raises StepFailed on the first that would fail."""
    step = pn.step
    assert isinstance(step, ImageStep)
    sid = pn.id.step
    checked = 0
    for plat in pn.platforms:
        for c in step.copy_:
            dep = dep_entry(deps, c.from_, plat)
            if dep is None:
                continue
            for f in dep.files:
                if f.link is not None or not _selected(f.path, c.src):
                    continue
                blob = store.blob_path(f.digest)
                with blob.open("rb") as fh:
                    if fh.read(4) != _ELF_MAGIC:
                        continue
                label = f"{c.from_}:{f.path} ({plat})"
                try:
                    header = read_elf(blob)
                except ValueError:
                    continue  # not a well-formed ELF: not ours to judge
                if header.type not in (2, 3) or (header.type == 3 and not header.interpreter
                                                 and header.soname):
                    continue  # a shared library, not an executable
                check_elf(blob, plat, step=sid, name=label)
                base = bases.get(plat)
                if base is not None:
                    check_against_base(header, base, step=sid, binary=label, file=file)
                checked += 1
    return checked


def _selected(path: str, src: str | None) -> bool:
    if src is None:
        return True
    s = PurePosixPath(src).as_posix().rstrip("/")
    return path == s or path.startswith(s + "/")

