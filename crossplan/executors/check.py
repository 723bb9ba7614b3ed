"""``plan run --check``: rebuild what the store already holds, from the same Action, into a
scratch store, and compare the outputs byte for byte (like ``nix build --check``). Nothing
new enters the real store; a difference fails the node, naming each differing file."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from crossplan.cache.store import CorruptEntry, Entry, OutputFile, Store
from crossplan.errors import StepFailed
from crossplan.executors.events import OnEvent, StepEvent
from crossplan.executors.protocol import ActionResult, Executor, Skip, dep_outputs
from crossplan.planner.actions import Action
from crossplan.planner.graph import NodeId

__all__ = ["Checking", "describe_differences"]


class Checking:
    """Rebuilds each stored node with ``build`` (which writes to a scratch store) and
    compares; a node not in the store is skipped (there is nothing to check)."""

    def __init__(self, store: Store, scratch: Store, build: Executor, on_event: OnEvent,
                 *, label: str = "") -> None:
        self.label = label  # the recipe file, for errors
        self.store = store
        self.scratch = scratch
        self.build = build
        self.on_event = on_event

    def execute(self, action: Action, deps: Mapping[NodeId, Entry]) -> ActionResult:
        t0 = time.monotonic()
        key = action.key(dep_outputs(deps))
        try:
            entry = self.store.get(key)
        except CorruptEntry as exc:
            raise StepFailed(f"the stored entry is damaged: {exc}", step=str(action.node),
                             hint="`plan cache verify` evicts it; then build again") from None
        if entry is None:
            raise Skip("not in the store: nothing to check (build it first)")
        self.on_event(StepEvent("started", action.node, key, message="checking"))
        fresh = self.build.execute(action, deps)
        diffs = describe_differences(entry, self.store, fresh.entry, self.scratch)
        if diffs:
            raise StepFailed(
                f"not reproducible: a rebuild from the same Action differs in "
                f"{len(diffs)} file(s)", step=str(action.node), file=self.label or None,
                log_tail="\n".join(diffs),
                log=fresh.log, hint="make the step deterministic (timestamps, random "
                "names, paths, parallel archive order); the stored entry is unchanged",
            )
        return ActionResult(key, entry, "checked", time.monotonic() - t0, log=fresh.log)


def describe_differences(old: Entry, old_store: Store, new: Entry, new_store: Store) -> list[str]:
    """One line per output that differs: added/removed, size, first differing offset and,
    for ELF files, the section holding it."""
    before = {f.path: f for f in old.files}
    after = {f.path: f for f in new.files}
    out: list[str] = []
    for path in sorted(before.keys() | after.keys()):
        a, b = before.get(path), after.get(path)
        if a is None:
            out.append(f"{path}: only in the rebuild")
        elif b is None:
            out.append(f"{path}: missing from the rebuild")
        elif (a.digest, a.mode, a.link) != (b.digest, b.mode, b.link):
            out.append(f"{path}: {_one(a, old_store, b, new_store)}")
    return out


def _one(a: OutputFile, sa: Store, b: OutputFile, sb: Store) -> str:
    if a.link is not None or b.link is not None:
        return f"symlink {a.link!r} != {b.link!r}"
    if a.mode != b.mode:
        return f"mode {oct(a.mode)} != {oct(b.mode)}"
    pa, pb = sa.blob_path(a.digest), sb.blob_path(b.digest)
    offset = _first_difference(pa, pb)
    text = f"size {a.size} vs {b.size}, first difference at byte {offset}"
    section = _elf_section(pa, offset)
    return text + (f" (ELF section {section})" if section else "")


def _first_difference(a: Path, b: Path) -> int:
    pos = 0
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(1 << 16), fb.read(1 << 16)
            if ca != cb:
                n = min(len(ca), len(cb))
                i = next((i for i in range(n) if ca[i] != cb[i]), n)
                return pos + i
            if not ca:
                return pos
            pos += len(ca)


def _elf_section(path: Path, offset: int) -> str | None:
    """The name of the ELF section whose file bytes hold ``offset`` (pyelftools)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with open(path, "rb") as f:
            if f.read(4) != b"\x7fELF":
                return None
            f.seek(0)
            elf = ELFFile(f)
            for sec in elf.iter_sections():
                start, size = sec["sh_offset"], sec["sh_size"]
                if sec["sh_type"] != "SHT_NOBITS" and start <= offset < start + size:
                    return str(sec.name) or "(unnamed)"
            return "(headers)" if offset < elf["e_ehsize"] else "(outside sections)"
    except (ELFError, OSError, ValueError):
        return None
