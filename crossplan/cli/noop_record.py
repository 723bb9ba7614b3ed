"""Writes the no-op memo (cli/noop.py) after a `plan run` that found every node cached:
what the run depended on, as stat signatures, and what it printed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossplan.cli import noop

if TYPE_CHECKING:
    from crossplan.api.running import RunOptions
    from crossplan.executors.result import RunResult
    from crossplan.planner.facts import ToolCommand
    from crossplan.planner.plan import Plan

__all__ = ["remember_noop"]

_KEEP = 256  # memo files kept per store (the oldest go first)
_GLOB = set("*?[")


class _Racy(Exception):
    """Not memoised: something the run depended on changed too recently to trust its stat
    signature, or cannot be checked by a replay."""


def remember_noop(
    p: Plan, result: RunResult, opts: RunOptions, *, json_out: dict[str, Any] | None,
    text_out: str | None,
) -> None:
    """Write the memo for the current `plan run` argv when it may be replayed: started by
    main(), everything cached, nothing exported/checked, pushes all up to date, no warning,
    and keys made of files and what a replay can check by stat (shell steps, Go without
    cgo, C by zig, gcc or clang, images on `scratch`: no other toolchain, no pinned base)."""
    argv = noop.ARGV
    if argv is None or not noop.enabled() or not _replayable(p, result, opts):
        return
    from crossplan.cache.store import default_store_dir

    store = Path(opts.cache_dir) if opts.cache_dir else default_store_dir()
    if text_out is not None:  # the summary line ends the text: "5 cached in 0.42s"
        head, _, last = text_out.rstrip("\n").rpartition("\n")
        last = re.sub(r"\x1b\[[0-9;]*m", "", last)  # a terminal's colours: replayed plain
        tail = f" in {result.seconds:.2f}s"
        if not last.endswith(tail):
            return
        text_out = f"{head}\n" if head else ""
        text_out += f"{last[:-len(tail)]} in {noop.SECONDS_MARK}s\n"
    try:
        memo = {"format": noop.FORMAT, **_depends(p, result, store.resolve(), opts.offline),
                "json": json_out, "text": text_out}
        _write(Path(noop.memo_path(argv)), memo)  # keyed by STARTED_ENV
    except (_Racy, OSError, sqlite3.Error):
        return  # no memo this time: the next no-op run plans and tries again


def _daemonless(identity: str | None) -> bool:
    """An image the memo can vouch for: the daemonless backend's (its base is scratch, or a
    registry index a replay asks for once: ``_bases``). buildx asks the engine."""
    from crossplan.images.pin import identity_fields

    return identity_fields(identity).get("backend") == "oci"


def _replayable(p: Plan, result: RunResult, opts: RunOptions) -> bool:
    facts = p.facts
    if facts is None or facts.deferred or facts.notes or facts.sysroots:
        return False
    if not all(_vouched(tool, facts.identities.get(n)) for n, tool in facts.commands.items()):
        return False
    images = [v for n, v in facts.identities.items() if n not in facts.commands]
    if not all(_daemonless(v) for v in images):
        return False
    plain = not (opts.export or opts.output or opts.smoke or opts.check
                 or opts.affected or opts.stream_logs or opts.environ is not None)
    if opts.push and not all(i.up_to_date and i.pushed for i in result.images):
        return False  # a push that wrote something is no no-op
    return (plain and result.ok and not result.warnings and bool(result.steps)
            and all(s.status == "cached" and s.key for s in result.steps))


_C_KINDS = ("zig: ", "gcc: ", "clang: ")  # the C compilers whose identity is one binary's


def _vouched(tool: ToolCommand, identity: str | None = None) -> bool:
    """Toolchains whose identity a replay can check by stat signatures: Go without cgo (its
    key holds `go version`, which is the binary's, and what found the binary: PATH), and C
    by zig, gcc or clang (its key holds the compiler's version line, the binary's, which the
    step's environment or wrappers name; the target and libc, from the recipe; a managed
    zig's pin). Rust, cgo, and C steps running cmake or meson read more (rustup's choice, a
    second compiler, the build tools' versions) and always plan."""
    if tool.toolchain == "go":
        return tool.env.get("CGO_ENABLED") == "0"
    if tool.toolchain != "c" or not identity:
        return False
    first, *rest = identity.splitlines()
    return first.startswith(_C_KINDS) and all(
        line.startswith(("libc=", "managed ")) for line in rest)


def _depends(p: Plan, result: RunResult, store: Path, offline: bool) -> dict[str, Any]:
    files: dict[str, list[int]] = {}
    dirs: dict[str, list[int]] = {}
    absent: set[str] = set()
    limit = noop.STARTED_NS - noop.RACY_NS

    def sig(path: str, st: os.stat_result) -> list[int]:
        if st.st_mtime_ns >= limit:
            raise _Racy(path)
        return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode]

    def file(path: Path | str) -> None:
        try:
            files[str(path)] = sig(str(path), os.lstat(path))
        except FileNotFoundError:
            absent.add(str(path))

    def directory(path: Path | str) -> None:
        dirs[str(path)] = sig(str(path), os.stat(path))

    recipe = p.recipe
    file(recipe.file.resolve())
    _plan_search(recipe.root.resolve(), noop.ARGV or [], file, directory)
    for m in recipe.members:
        file((recipe.root / m.path / "plan.toml").resolve())
    if recipe.workspace is not None:
        for pat in recipe.workspace.members:
            if _GLOB & set(pat):  # a new matching directory changes a recorded one
                directory(recipe.root.resolve())
                for hit in recipe.root.glob(pat):
                    for d in (hit, *hit.relative_to(recipe.root).parents):
                        if (recipe.root / d).is_dir():
                            directory((recipe.root / d).resolve())
    facts = p.facts
    assert facts is not None
    if facts.sandbox == "bwrap":
        from crossplan.probe.sandbox import bwrap_path

        file(os.path.realpath(bwrap_path()))
    _trees(p, file, directory)
    if facts.commands:
        _toolchains(p, file, directory)
    blobs: dict[str, list[int]] = {}
    keys = sorted({s.key for s in result.steps if s.key})
    from crossplan.cache.store import Store

    handle = Store(store)
    try:
        for key in keys:
            entry = handle.get(key, verify=False)
            if entry is None:
                raise _Racy(key)
            for digest in entry.blobs():
                blobs[digest] = sig(digest, os.lstat(handle.blob_path(digest)))
    finally:
        handle.close()
    times = noop.index_times(str(store), keys)
    if sorted(times) != keys:
        raise _Racy("index")
    refs = [*_pushes(p, result), *_bases(p)]
    if offline:  # no GET: the push records the offline run trusted, by stat signature; a
        from crossplan.images.offline import record_path  # base: by digest or plan.lock

        for image in result.images:
            for name in image.pushed:
                file(record_path(store, name))
        refs = []
    return {"refs": refs, "store": str(store),
            "dirs": sorted([k, *v] for k, v in dirs.items()),
            "files": sorted([k, *v] for k, v in files.items()), "absent": sorted(absent),
            "blobs": sorted([k, *v] for k, v in blobs.items()), "keys": times}


def _pushes(p: Plan, result: RunResult) -> list[list[str]]:
    """(scheme, host, path, accept, index digest) of every tag the run found up to date."""
    from crossplan.backends.oci.registry import MANIFEST_ACCEPT
    from crossplan.imageref import DOCKER_HUB, Reference, is_loopback
    from crossplan.recipes.models import ImageStep

    pushes = []
    for image in result.images:
        step = p.recipe.steps[image.step]
        if image.pushed and (not isinstance(step, ImageStep) or step.arch_tags):
            raise _Racy(image.step)  # per-platform tags name manifests: not replayed
        for name in image.pushed:
            ref = Reference.parse(name)
            if ref.registry == DOCKER_HUB or not ref.tag:
                raise _Racy(name)  # Docker Hub wants a token even to read
            scheme = "http" if is_loopback(ref.registry) else "https"
            pushes.append([scheme, ref.registry, f"/v2/{ref.repository}/manifests/{ref.tag}",
                           MANIFEST_ACCEPT, image.index_digest])
    return pushes


def _bases(p: Plan) -> list[list[str]]:
    """The same, for each registry base a replay asks once: its tag must still name the
    index the image's key was made with; a base pinned by plan.lock must still be there (as
    planning asks). A base the recipe names by digest: nothing to ask. A layout base (files
    the memo does not follow) or a Docker Hub base (a token even to read): no memo."""
    from crossplan.backends.oci.layout import parse_layout_ref
    from crossplan.backends.oci.registry import MANIFEST_ACCEPT
    from crossplan.imageref import DOCKER_HUB, Reference, is_loopback
    from crossplan.images.pin import base_pin
    from crossplan.probe.lockfile import LOCK_NAME, read_lock
    from crossplan.recipes.models import ImageStep

    assert p.facts is not None
    lock = read_lock(p.recipe.root / LOCK_NAME)
    locked = {b.digest for b in lock.bases.values()} if lock is not None else set()
    refs = []
    for node, identity in sorted(p.facts.identities.items(), key=lambda kv: str(kv[0])):
        step = p.recipe.steps.get(node.step)
        if not isinstance(step, ImageStep) or step.base == "scratch":
            continue
        if parse_layout_ref(step.base) is not None:
            raise _Racy(node.step)
        ref = Reference.parse(step.base)
        if ref.digest and ref.digest not in locked:
            continue
        want = ref.digest or base_pin(identity).rpartition("@")[2]
        if ref.registry == DOCKER_HUB or not want.startswith("sha256:") or "," in want:
            raise _Racy(node.step)
        scheme = "http" if is_loopback(ref.registry) else "https"
        refs.append([scheme, ref.registry,
                     f"/v2/{ref.repository}/manifests/{ref.digest or ref.tag}",
                     MANIFEST_ACCEPT, want])
    return refs


def _plan_search(root: Path, argv: list[str], file: Any, directory: Any) -> None:
    """What chose the plan: the directories from here up to it (a plan.toml appearing in
    between would be found first), and each non-option argument as a path (a step id that
    becomes a directory holding a plan.toml would be read as the plan)."""
    here = Path.cwd().resolve()
    if here == root or root in here.parents:
        d = here
        while True:
            directory(d)
            if d == root:
                break
            d = d.parent
    for arg in argv[1:]:
        if not arg.startswith("-"):
            path = here / arg
            file(path)
            if path.is_dir():
                directory(path.resolve())
                file(path / "plan.toml")


def _toolchains(p: Plan, file: Any, directory: Any) -> None:
    """What found and identifies the toolchains ``_vouched`` for: every directory on PATH (a
    `go` or `zig` added to one would be found first; a missing one, created), the `go` and
    `zig` found on PATH, the binary each command runs and every host path a C step's
    commands, environment and wrappers name (the compiler they run), with every link on the way
    to each (an upgrade is a new file: another signature, so the next run plans and asks
    the toolchain again)."""
    import shutil

    from crossplan.probe.toolchains import host_paths

    assert p.facts is not None
    path = noop.STARTED_ENV.get("PATH", "")
    for d in path.split(os.pathsep):
        if d:
            file(d)  # absent, a link, or the directory
            if os.path.isdir(d):
                directory(os.path.realpath(d))
    tools = p.facts.commands.values()
    runs = {argv[0] for tool in tools for argv in tool.commands if argv}
    runs |= {named for tool in tools if tool.toolchain == "c" for named in host_paths(tool)}
    for name in ("go", "zig"):
        found = shutil.which(name, path=path)
        if found:
            runs.add(found)
    for exe in sorted(runs):
        hop, seen = os.path.abspath(exe), set()
        while hop not in seen:  # each link of a chain (update-alternatives...), then the end
            seen.add(hop)
            file(hop)
            if not os.path.islink(hop):
                break
            hop = os.path.join(os.path.dirname(hop), os.readlink(hop))
        file(os.path.realpath(exe))


def _trees(p: Plan, file: Any, directory: Any) -> None:
    """Every file and directory the input trees' walks met (as probe/digest.py prunes them):
    a new, removed, edited or chmod-ed input changes one of their signatures."""
    from crossplan.probe.digest import _ignore_spec

    assert p.facts is not None
    done: set[tuple[str, tuple[str, ...]]] = set()
    for sid, tree in p.facts.trees.items():
        if tree is None:
            continue
        exclude = tuple(p.recipe.steps[sid].exclude)
        if (str(tree.root), exclude) in done:
            continue
        done.add((str(tree.root), exclude))
        if tree.single:
            file(tree.root)
            continue
        for name in (".gitignore", ".dockerignore"):
            file(tree.root / name)
        spec = _ignore_spec(tree.root, exclude)
        for dirpath, dirnames, filenames in os.walk(tree.root):
            directory(dirpath)
            rel_dir = os.path.relpath(dirpath, tree.root)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            dirnames[:] = [d for d in dirnames if not spec.match_file(rel_dir + d + "/")]
            for name in filenames:
                if not spec.match_file(rel_dir + name):
                    file(os.path.join(dirpath, name))


def _write(path: Path, memo: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(memo, f, separators=(",", ":"))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    old = sorted(path.parent.glob("*.json"), key=lambda f: f.stat().st_mtime)
    for stale in old[:-_KEEP]:
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
