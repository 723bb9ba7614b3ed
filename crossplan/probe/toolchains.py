"""Ask the toolchains: each compile node's version identity and its commands, lowered against
the logical WORKDIR/TOOLCACHE paths (so the planner can make Actions without running anything)."""

from __future__ import annotations

import copy as copy_module
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from crossplan.backends.toolchains.base import Toolchain, toolchain_notes
from crossplan.backends.toolchains.sysroot import cc_kind, with_sysroot
from crossplan.errors import CrossplanError, StepFailed
from crossplan.network import Offline
from crossplan.planner.facts import TOOLCACHE, WORKDIR, ToolCommand
from crossplan.planner.graph import NodeId
from crossplan.planner.sysroot import SysrootFact
from crossplan.planner.tree import TreeDigest
from crossplan.platforms import Platform
from crossplan.recipes.models import ImageStep, Recipe, ShellStep, Step

__all__ = ["Resolver", "host_paths", "probe_toolchains", "resolver_for", "tool_roots",
           "warm_toolchains"]

# (step id, step) -> the toolchain that builds it.
Resolver = Callable[[str, Step], Toolchain]


def resolver_for(recipe: Recipe, store_dir: Path, environ: Mapping[str, str]) -> Resolver:
    """Toolchains found once per step (pinned ones are installed into the store); safe to
    call from two threads (``warm_toolchains`` runs beside the input-tree walk): the second
    caller waits for the first's answer rather than finding (or installing) it again."""
    cache: dict[str, Toolchain] = {}
    lock = threading.Lock()

    def resolve(sid: str, step: Step) -> Toolchain:
        with lock:
            if sid not in cache:
                from crossplan.backends.toolchains.discover import toolchain_for

                cache[sid] = toolchain_for(step, recipe.toolchains, store_dir, environ)
            return cache[sid]

    return resolve


def warm_toolchains(recipe: Recipe, steps: Iterable[str], resolve: Resolver) -> None:
    """Start, on a thread of its own, what ``probe_toolchains`` will ask of the compile
    steps' toolchains and can ask now: resolving them, and the probes a toolchain offers
    through ``warm()`` (``go version``: a process, ~5 ms), while the planning thread reads
    the input trees. Errors are left for ``probe_toolchains``, which asks again and
    reports them for the node."""
    wanted = [(sid, recipe.steps[sid]) for sid in steps
              if not isinstance(recipe.steps[sid], (ShellStep, ImageStep))]
    if not wanted:
        return

    def run() -> None:
        for sid, step in wanted:
            try:
                warm = getattr(resolve(sid, step), "warm", None)
                if callable(warm):
                    warm()
            except Exception:  # reported by probe_toolchains, which asks again
                continue

    threading.Thread(target=run, name="toolchain-probe", daemon=True).start()


def probe_toolchains(
    recipe: Recipe, nodes: Mapping[NodeId, Platform | None],
    trees: Mapping[str, TreeDigest | None], resolve: Resolver,
    sysroots: Mapping[NodeId, SysrootFact] | None = None,
) -> tuple[
    dict[NodeId, str | None], dict[NodeId, ToolCommand], dict[NodeId, CrossplanError],
    tuple[str, ...],
]:
    """For each compile node: (identity for its key, its commands, or the error its build
    will report), and the toolchains' notes for the user (e.g. a managed default used).
    Every problem of one node is deferred to that node, which then fails alone
    when it is executed (a missing toolchain or target std: EnvironmentProblem, exit 3 only
    if that node is part of the run), so one missing toolchain does not block the steps that
    do not need it. Each deferred error names the recipe file and the step."""
    identities: dict[NodeId, str | None] = {}
    commands: dict[NodeId, ToolCommand] = {}
    deferred: dict[NodeId, CrossplanError] = {}
    unresolved: dict[str, CrossplanError] = {}  # per step: resolving failed once, not again
    notes: dict[str, None] = {}
    for node, platform in nodes.items():
        step = recipe.steps[node.step]
        if isinstance(step, (ShellStep, ImageStep)):
            continue
        if platform is None:
            identities[node] = None
            deferred[node] = StepFailed(
                f"{step.kind} steps build per platform; remove platform_independent",
                step=node.step, file=recipe.label_of(node.step),
            )
            continue
        try:
            if node.step in unresolved:
                raise unresolved[node.step]
            try:
                tc = resolve(node.step, step)
            except CrossplanError as exc:
                unresolved[node.step] = exc
                raise
            tree = trees.get(node.step)
            source = tree.root if tree is not None and not tree.single else None
            built = tc.action(step, platform, Path(WORKDIR), Path(TOOLCACHE) / tc.name,
                              source=source or recipe.root / (step.src or "."))
            # after action: a Rust toolchain is chosen by the crate's needs, read there
            identities[node] = tc.fingerprint(platform)
            if sysroots and node in sysroots:  # a Debian sysroot: --sysroot, pkg-config...
                built = with_sysroot(built, sysroots[node].path, platform, tc.name,
                                     cc_kind(tc, platform), getattr(step, "libc", None) or "gnu")
        except Offline:
            raise  # an offline run cannot install it: stop the plan (exit 3)
        except CrossplanError as exc:
            identities.setdefault(node, None)
            deferred[node] = _located(exc, recipe.label_of(node.step), node.step)
            continue
        notes.update(dict.fromkeys(toolchain_notes(tc)))
        commands[node] = ToolCommand(
            commands=built.commands, env=dict(built.env), outputs=built.outputs,
            executables=built.executables, files=dict(built.files), toolchain=tc.name,
            # not PATH: a C step's PATH is the user's after crossplan's wrappers (bound or not)
            roots=tool_roots(built.commands, {k: v for k, v in built.env.items() if k != "PATH"},
                             built.files),
        )
    return identities, commands, deferred, tuple(notes)


def _located(exc: CrossplanError, file: str, step: str) -> CrossplanError:
    """``exc`` naming the recipe file and step it belongs to (when it did not already)."""
    if exc.file is not None and exc.step is not None:
        return exc
    copy = copy_module.copy(exc)
    copy.file = exc.file or file
    copy.step = exc.step or step
    copy.args = (copy.render(),)
    return copy


_SYSTEM = ("/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/", "/lib32/", "/etc/", "/proc/", "/dev/")
_TOKEN = re.compile(r"/[^\s'\"=:;]+")


def host_paths(command: ToolCommand) -> tuple[str, ...]:
    """The absolute host paths a toolchain's commands name in argv, environment or wrapper
    scripts (the compiler a wrapper runs, for one), outside the work dir and toolcache,
    whether or not they exist, sorted."""
    texts = ([a for c in command.commands for a in c] + list(command.env.values())
             + list(command.files.values()))
    return tuple(sorted({token for text in texts for token in _TOKEN.findall(text)
                         if not token.startswith((WORKDIR, TOOLCACHE))}))


def tool_roots(
    commands: tuple[tuple[str, ...], ...], env: Mapping[str, str], files: Mapping[str, str]
) -> tuple[str, ...]:
    """The host directories a toolchain's commands use, outside the system paths: for each
    absolute path named in argv, environment or wrapper scripts, its install root (the
    parent of a ``bin/`` directory, else its directory), before and after resolving
    symlinks (a venv's python points into its base interpreter). A sandbox binds these
    read-only and nothing else of the host."""
    roots: set[str] = set()
    for token in host_paths(ToolCommand(commands=commands, env=env, files=files)):
        if token.startswith(_SYSTEM):
            continue
        path = Path(token)
        if not path.exists():
            continue
        for p in {path, path.resolve()}:
            root = p if p.is_dir() else (
                p.parent.parent if p.parent.name == "bin" else p.parent)
            if str(root) != "/" and not (str(root) + "/").startswith(_SYSTEM):
                roots.add(str(root))
    # nested roots are covered by their parents
    ordered = sorted(roots)
    return tuple(r for r in ordered if not any(r != o and r.startswith(o + "/") for o in ordered))
