"""``run``: execute a Plan through one executor stack assembled here, then publish images."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossplan.api.planning import store_for
from crossplan.backends.host import allow_commands, stop_commands
from crossplan.cache.store import Entry, Store
from crossplan.executors.events import OnEvent, StepEvent
from crossplan.executors.export import export_entries
from crossplan.executors.host import HostExecutor
from crossplan.executors.protocol import ActionResult, Executor
from crossplan.executors.remote import RemoteCached
from crossplan.executors.result import ImageResult, RunResult
from crossplan.executors.wrappers import ByKind, LocalCache, Publishing, Verified
from crossplan.images.protocol import ImageBackend
from crossplan.planner.actions import Action
from crossplan.planner.graph import ANY, NodeId
from crossplan.planner.plan import Plan
from crossplan.recipes.models import ImageStep
from crossplan.runner.scheduler import execute_plan

if TYPE_CHECKING:
    from crossplan.attest import AttestOptions
    from crossplan.executors.reapi.settings import Endpoint
    from crossplan.executors.substitution import RemoteRun

__all__ = ["RunOptions", "executor_for", "run", "stop_steps", "toolcache_dir"]


@dataclass
class RunOptions:
    """Everything ``plan run`` can be told, for the API."""

    cache_dir: str | Path | None = None
    jobs: int | None = None
    keep_going: bool = False
    export: str | Path | None = None
    output: str | None = None  # oci:DIR | oci-archive:FILE
    push: bool = False
    smoke: bool = False
    targets: list[str] = field(default_factory=list)  # step ids or globs (empty: all)
    environ: Mapping[str, str] | None = None
    cache_remote: str | None = None
    cache_mode: str | None = None
    check: bool = False  # rebuild what the store holds and compare; store nothing new
    affected: bool = False  # only the nodes `affected(plan, since)` reports, and their deps
    since: str | None = None  # git revision for `affected` (None: the last recorded run)
    phases: bool = False  # `phase` events: staging, compiling/running, assembling, pushing
    stream_logs: bool = False  # `output` events: each line the steps' commands print
    sign_key: str | Path | None = None  # a cosign key (else [sign] key): signs what is published
    offline: bool = False  # no network: no remote cache, pushes from records (else exit 3)
    executor: str | None = None  # local | remote (None: CROSSPLAN_EXECUTOR, [execution])


def stop_steps() -> None:
    """Stop a run in this process (for a SIGINT/SIGTERM handler): every running step's
    process group is killed and no command starts any more; the killed nodes raise
    KeyboardInterrupt out of ``run`` (nothing of them is stored). The next ``run`` resets."""
    stop_commands()


def run(
    p: Plan, options: RunOptions | None = None, *, on_event: OnEvent | None = None,
    jobs: int | None = None,
) -> RunResult:
    """Build every node of ``p`` (or ``options.targets`` and their deps; with
    ``options.affected``, only the affected ones among them). ``on_event`` receives a
    typed StepEvent per started/finished/cached/substituted/failed/skipped node (with
    ``options.phases``, the ``phase`` events of running ones; with ``options.stream_logs``,
    their log lines), from worker threads; ``jobs`` overrides ``options.jobs``. After
    ``stop_steps()`` it raises KeyboardInterrupt."""
    opts = options or RunOptions()
    if jobs is not None:
        opts = dataclasses.replace(opts, jobs=jobs)
    if opts.targets:
        p = p.subplan(p.select(opts.targets))
    if opts.affected:
        from crossplan.api.inspecting import affected

        found = affected(p, opts.since, cache_dir=opts.cache_dir, environ=opts.environ)
        p = p.subplan(found.targets)
    allow_commands()
    store = store_for(opts.cache_dir)
    remote: RemoteRun | None = None
    try:
        environ = os.environ if opts.environ is None else opts.environ
        emit: OnEvent = on_event or (lambda e: None)
        from crossplan.images.offline import is_offline

        offline = opts.offline or is_offline(environ)
        if not offline and _remote_named(p, opts, environ):  # else no registry client
            from crossplan.executors.substitution import RemoteRun, remote_settings

            settings = remote_settings(
                p.recipe, remote=opts.cache_remote, mode=opts.cache_mode, environ=environ
            )
            if settings is not None and not opts.check:  # look-ups now, downloads meanwhile
                remote = RemoteRun.start(p, store, settings, on_event)
        from crossplan.images import backends_for, close_backends, prepare_images

        attest = None
        if (opts.output or opts.push) and not opts.check:  # a bad key fails before building
            from crossplan.attest import options_for

            attest = options_for(p.recipe, opts.sign_key, environ)

        backends = backends_for(p.recipe, store, p.source_date_epoch, offline=offline)
        if opts.check:
            return _check(p, store, backends, emit, opts)
        from crossplan.executors.reapi.settings import endpoint_for

        endpoint = endpoint_for(p.recipe.execution, opts.executor, environ,
                                label=p.recipe.label)
        executor = executor_for(p, store, backends, toolcache_dir(store, environ), emit,
                                remote=remote, phases=opts.phases,
                                stream_logs=opts.stream_logs, endpoint=endpoint)
        notes = p.facts.notes if p.facts else ()
        for note in notes:
            emit(StepEvent("warning", NodeId("plan", ANY), message=note))
        try:
            result, entries = execute_plan(
                p, executor, jobs=opts.jobs, keep_going=opts.keep_going, on_event=emit,
                prepare=prepare_images(backends),
            )
        finally:
            close_backends(backends)
        if opts.export:
            export_entries(store, entries, Path(opts.export))
        if opts.smoke:
            from crossplan.checks.smoke_run import smoke_test

            result = smoke_test(p, store, result, entries,
                                remote=_remote_runner(p, store, endpoint, environ))
        if notes:
            result = dataclasses.replace(result, warnings=(*result.warnings, *notes))
        if result.ok:
            result = _publish(p, result, entries, backends, output=opts.output, push=opts.push,
                              on_event=emit if opts.phases else (lambda e: None))
            if attest is not None and attest.enabled:
                from crossplan.api.attest_once import attest_once

                result = attest_once(p, result, entries, store, opts.output, attest,
                                     offline=offline, attach=_attest)
        return remote.finish(result) if remote else result
    finally:
        if remote is not None:
            remote.close()
        store.close()


def _remote_runner(
    p: Plan, store: Store, endpoint: Endpoint | None, environ: Mapping[str, str],
) -> Callable[[Action, Mapping[NodeId, Entry]], ActionResult] | None:
    """With a REAPI endpoint: smoke runs go to a worker of the target's ISA."""
    if endpoint is None:
        return None
    from crossplan.executors.reapi.executor import RemoteExecutor

    toolcache = toolcache_dir(store, environ)
    local = HostExecutor(store, toolcache, label=p.recipe.label)
    return RemoteExecutor(endpoint, store, local, label=p.recipe.label,
                          memo=toolcache / ".reapi-trees").execute


def _remote_named(p: Plan, opts: RunOptions, environ: Mapping[str, str]) -> bool:
    """Whether ``substitution.remote_settings`` has anything to say: a remote named by the
    option, ``CROSSPLAN_CACHE_REMOTE`` or ``[cache] remote``, or a mode it must reject."""
    cfg = p.recipe.cache
    url = (opts.cache_remote if opts.cache_remote is not None
           else environ.get("CROSSPLAN_CACHE_REMOTE") or cfg.remote)
    mode = opts.cache_mode or environ.get("CROSSPLAN_CACHE_MODE") or cfg.mode
    return bool(url) or mode not in ("readwrite", "read", "off")


def _builder(
    p: Plan, store: Store, backends: Mapping[str, ImageBackend], toolcache: Path, out: Store,
    on_event: OnEvent, *, phases: bool = False, stream_logs: bool = False,
    endpoint: Endpoint | None = None,
) -> Executor:
    """Host commands (sandboxed when the facts say so) or image backends, then ELF checks;
    deps' outputs are read from ``store``, outputs written to ``out``; ``on_event`` hears
    the executors' ``phase`` and ``output`` events when asked for."""
    from crossplan.images.executor import ImageExecutor

    def step_event(e: StepEvent) -> None:
        if (phases and e.kind == "phase") or (stream_logs and e.kind == "output"):
            on_event(e)

    facts = p.facts
    sandbox = None
    if facts is not None and facts.sandbox == "bwrap":
        from crossplan.executors.sandbox import Sandbox
        from crossplan.probe.sandbox import bwrap_path

        sandbox = Sandbox(bwrap_path(), store.root / "sandbox" / "etc")
    commands: Executor = HostExecutor(
        store, toolcache, label=p.recipe.label, deferred=facts.deferred if facts else None,
        sandbox=sandbox, out=out, on_event=step_event, stream_logs=stream_logs)
    if endpoint is not None:  # REAPI: what can travel runs remotely, the rest here
        from crossplan.executors.reapi.executor import RemoteExecutor

        commands = RemoteExecutor(endpoint, store, commands, out=out, label=p.recipe.label,
                                  on_event=step_event, memo=toolcache / ".reapi-trees",
                                  deferred=facts.deferred if facts else None)
    build: Executor = ByKind(
        commands,
        ImageExecutor(p.nodes, store, backends, out=out, on_event=step_event,
                      label=p.recipe.label),
    )
    return Verified(out, build, {n: pn.platform for n, pn in p.nodes.items()})


def _check(
    p: Plan, store: Store, backends: Mapping[str, ImageBackend], emit: OnEvent,
    opts: RunOptions,
) -> RunResult:
    """``--check``: every stored node rebuilt into a scratch store (with an empty toolcache)
    and compared."""
    import shutil
    import tempfile

    from crossplan.executors.check import Checking

    scratch_dir = Path(tempfile.mkdtemp(prefix="check-", dir=store.root / "tmp"))
    scratch = Store(scratch_dir)
    try:
        # An empty toolcache: a warm GOCACHE or zig cache would hand back the artifacts
        # being checked instead of compiling them again.
        fresh = scratch_dir / "toolcache"
        checking = Checking(store, scratch, _builder(
            p, store, backends, fresh, scratch, emit, phases=opts.phases,
            stream_logs=opts.stream_logs),
                            emit, label=p.recipe.label)
        result, _ = execute_plan(p, checking, jobs=opts.jobs, keep_going=True, on_event=emit)
        return result
    finally:
        scratch.close()
        shutil.rmtree(scratch_dir, ignore_errors=True)


def executor_for(
    p: Plan, store: Store, backends: Mapping[str, ImageBackend], toolcache: Path, on_event: OnEvent,
    *, remote: RemoteRun | None = None, phases: bool = False, stream_logs: bool = False,
    endpoint: Endpoint | None = None,
) -> Executor:
    """The one executor of a run: local store, remote cache, lock + publish, ELF checks,
    then the host or a REAPI cluster (commands) or the image backends (images)."""
    inner = _builder(p, store, backends, toolcache, store, on_event, phases=phases,
                     stream_logs=stream_logs, endpoint=endpoint)
    build: Executor = Publishing(store, inner, on_event, label=p.recipe.label)
    if remote is not None:
        build = RemoteCached(remote, build, label=p.recipe.label)
    root = str(p.recipe.root.resolve())

    def record(action: Action, key: str, deps: Mapping[NodeId, Entry]) -> dict[str, Any]:
        pn = p.nodes[action.node]
        return {
            "key": key,
            "components": dict(pn.components),
            "inputs": pn.inputs.as_map() if pn.inputs else {},
            "deps": {str(d): e.digests() for d, e in deps.items()},
            "root": root,  # records are per node id, in one store
            "time": time.time(),
        }

    return LocalCache(store, build, record, on_event, label=p.recipe.label, root=root)


def _publish(
    p: Plan, result: RunResult, entries: Mapping[NodeId, Entry],
    backends: Mapping[str, ImageBackend], *, output: str | None, push: bool,
    on_event: OnEvent,
) -> RunResult:
    """``--output`` / ``--push`` every built image step through its backend (``phase``
    events: publishing or pushing, the oci backend's blob progress, then published)."""
    facts = p.facts
    images: list[ImageResult] = []
    nodes = [(n, e) for n, e in entries.items() if isinstance(p.recipe.steps[n.step], ImageStep)]
    if not nodes:  # no image: the image backends (registry client, Docker SDK) never load
        return RunResult(result.steps, (), result.warnings, result.seconds)
    from crossplan.images.oci import OciBackend

    say = on_event if (output or push) else (lambda e: None)
    for node, entry in nodes:
        name = facts.backends.get(node.step, "oci") if facts else "oci"
        backend = backends[name]
        say(StepEvent("phase", node, entry.key, message="pushing" if push else "publishing"))

        def progress(text: str, node: NodeId = node, key: str = entry.key) -> None:
            on_event(StepEvent("phase", node, key, message=f"pushing: {text}"))

        if isinstance(backend, OciBackend):
            image = backend.publish(node, entry, entries, output=output, push=push,
                                    count=len(nodes), on_progress=progress)
        else:
            image = backend.publish(node, entry, entries, output=output, push=push,
                                    count=len(nodes))
        images.append(image)
        say(StepEvent("phase", node, entry.key, message="published"))
    return RunResult(result.steps, tuple(images), result.warnings, result.seconds)


def _attest(p: Plan, result: RunResult, entries: Mapping[NodeId, Entry], store: Store,
            output: str | None, settings: AttestOptions) -> RunResult:
    """SBOM, provenance and signatures of each published image, attached as referrers."""
    from crossplan.attest import attest_image
    from crossplan.backends.oci.layout import parse_layout_ref

    keys = {s.node: s.key for s in result.steps if s.key}
    outputs = {n: e.digests() for n, e in entries.items()}
    layout = parse_layout_ref(output) if output else None
    images = []
    for image in result.images:
        out = image.layout if layout is not None and layout.kind == "oci" else None
        image = attest_image(p, image, entries[NodeId(image.step, ANY)], store, keys,
                             outputs, settings, layout_out=out)
        if layout is not None and layout.kind != "oci":
            image = dataclasses.replace(image, notes=(
                *image.notes, "attestations are written into oci:DIR outputs, not archives"))
        images.append(image)
    return dataclasses.replace(result, images=tuple(images))


def toolcache_dir(store: Store, environ: Mapping[str, str]) -> Path:
    """Toolchains' own caches (GOCACHE, zig, cargo target): speed only, never in keys.
    ``CROSSPLAN_TOOLCACHE_DIR`` shares them between stores."""
    shared = environ.get("CROSSPLAN_TOOLCACHE_DIR")
    return Path(shared) if shared else store.root / "toolcache"
