"""The local host executor: stage the input root in a fresh work dir, run the commands with
exactly the Action's environment, collect the declared outputs into the store (unpublished)."""

from __future__ import annotations

import functools
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from crossplan.backends.host import Interrupted, follow, log_tail, run_commands, stopping
from crossplan.cache.store import Entry, Store
from crossplan.errors import CrossplanError, EnvironmentProblem, StepFailed
from crossplan.executors import stash
from crossplan.executors.events import OnEvent, StepEvent
from crossplan.executors.protocol import ActionResult, dep_outputs
from crossplan.executors.sandbox import Sandbox
from crossplan.executors.workdir import collect_outputs, discard, later, new_workdir, populate
from crossplan.planner.actions import Action
from crossplan.planner.facts import HOME_NAME, TMP_NAME, TOOLCACHE, WORKDIR
from crossplan.planner.graph import NodeId

__all__ = ["HostExecutor", "log_path"]


def log_path(store: Store, node: NodeId, plan: str | Path | None = None) -> Path:
    """Where the last build log of ``node`` is kept. With ``plan`` (the recipe file, e.g.
    ``Recipe.label``) logs live under ``logs/<its directory's name>-<hash of its path>/``, so
    two projects' ``image`` steps keep separate logs; without it, directly in ``logs/``."""
    import hashlib

    name = str(node).replace("/", "_").replace("@", "-") + ".log"
    if not plan:
        return store.root / "logs" / name
    file = Path(plan)
    tag = hashlib.sha256(str(file).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    project = (file.parent.name or "plan").replace(":", "_")[:64]
    return store.root / "logs" / f"{project}-{tag}" / name


class HostExecutor:
    """Runs command Actions on this machine, in a work dir under the store's tmp.

    Commands are written against WORKDIR and TOOLCACHE; without a sandbox to bind them
    there, their real directories are substituted into argv, environment and files.
    ``on_event`` hears each node's phases (staging, then compiling or running) and, with
    ``stream_logs``, every line its commands print (``output`` events)."""

    def __init__(
        self, store: Store, toolcache: Path, *, label: str = "",
        deferred: Mapping[NodeId, CrossplanError] | None = None,
        sandbox: Sandbox | None = None, out: Store | None = None,
        on_event: OnEvent | None = None, stream_logs: bool = False,
    ) -> None:
        self.store = store  # deps' outputs are read from here
        self.out = out or store  # outputs and logs are written here
        self.toolcache = toolcache
        self.label = label  # the recipe file, for errors
        self.deferred = dict(deferred or {})
        self.sandbox = sandbox
        self.on_event: OnEvent = on_event or (lambda e: None)
        self.stream_logs = stream_logs
        if sandbox is not None:
            sandbox.prepare()

    def execute(self, action: Action, deps: Mapping[NodeId, Entry]) -> ActionResult:
        node = action.node
        if node in self.deferred:
            raise self.deferred[node]
        if not action.known:
            raise EnvironmentProblem(
                "the toolchain of this step was not probed", step=str(node),
                hint="plan with toolchains (api.plan(..., with_toolchains=True))",
            )
        t0 = time.monotonic()
        key = action.key(dep_outputs(deps))
        # only a sandboxed step's dir is kept: no process of it outlives it (stash.py)
        slot = stash.slot(str(self.label), str(node)) if self.sandbox is not None \
            and stash.enabled() else None
        if slot is not None:
            workdir, kept = stash.claim(self.store, slot, str(node), action.inputs)
        else:
            workdir, kept = new_workdir(self.store, str(node)), set()
        log = workdir / ".crossplan.log"
        keep = log_path(self.store, node, self.label)
        done = False
        try:
            self.on_event(StepEvent("phase", node, key, message="staging"))
            by_dir = {d.dir: deps[d.node] for d in action.deps}
            populate(workdir, action.inputs, by_dir, self.store, kept=kept)
            staged = stash.record(workdir, action.inputs) if slot is not None else None
            real = _Paths(workdir, self.toolcache, bound=self.sandbox is not None)
            for rel, text in action.files:
                (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
                (workdir / rel).write_text(real.sub(text))
            if action.toolchain:
                (self.toolcache / action.toolchain).mkdir(parents=True, exist_ok=True)
            env = {k: real.sub(v) for k, v in action.env}
            (workdir / HOME_NAME).mkdir(exist_ok=True)
            (workdir / TMP_NAME).mkdir(exist_ok=True)
            commands = [tuple(real.sub(a) for a in argv) for argv in action.commands]
            if self.sandbox is not None:
                for argv in commands:
                    _require_program(argv, env, str(node))
                self.toolcache.mkdir(parents=True, exist_ok=True)
                commands = [tuple(self.sandbox.wrap(
                    argv, workdir=workdir, toolcache=self.toolcache, cwd=action.workdir,
                    tools=action.tools, network=action.network)) for argv in commands]
            log.touch()
            phase = "compiling" if action.toolchain else "running"
            self.on_event(StepEvent("phase", node, key, message=phase))
            started = stash.started()
            with self._streaming(action, log, key):
                code = run_commands(commands, cwd=workdir / action.workdir, env=env, log=log,
                                    step=str(node))
            if stopping():
                raise Interrupted(str(node))  # stopped as it ended: not cached, not failed
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, keep)
            if code != 0:
                raise StepFailed(
                    f"command exited with status {code}", step=str(node), file=self.label,
                    log_tail=log_tail(log), hint=f"full log: {keep}", log=keep,
                )
            # the log is stored while the outputs are (each is hashed and flushed)
            log_put = _in_thread(self.out.put_bytes, log.read_bytes())
            files = collect_outputs(workdir, action.outputs, self.out, step=str(node))
            log_digest = log_put.result()
            secs = time.monotonic() - t0
            entry = Entry(key, str(node), files, log_digest, secs, time.time(), {})
            done = True
            return ActionResult(key, entry, "built", secs, 0, keep)
        except EnvironmentProblem:
            raise
        except StepFailed as exc:
            if exc.step is None:
                exc.step = str(node)
            raise
        except OSError as exc:
            raise StepFailed(f"{exc}", step=str(node), log=keep) from exc
        finally:
            if done and slot is not None and staged is not None:
                later(functools.partial(stash.keep, self.store, slot, workdir, staged, started,
                                        project=str(self.label)))
            else:
                discard(workdir)

    def _streaming(self, action: Action, log: Path, key: str) -> AbstractContextManager[None]:
        if not self.stream_logs:
            return nullcontext()
        node, emit = action.node, self.on_event
        wrapper = f"$ {self.sandbox.bwrap} " if self.sandbox is not None else None

        def on_line(line: str) -> None:
            if wrapper and line.startswith(wrapper) and " -- " in line:
                line = "$ " + line.split(" -- ", 1)[1]  # the command, not its sandbox
            emit(StepEvent("output", node, key, message=line))

        return follow(log, on_line)


def _require_program(argv: tuple[str, ...], env: Mapping[str, str], step: str) -> None:
    """A missing program is an environment problem (exit 3), also behind the sandbox, which
    would only report that its own exec failed. Paths inside the work dir are the step's."""
    prog = argv[0] if argv else ""
    if prog.startswith((WORKDIR, TOOLCACHE)) or ("/" in prog and not prog.startswith("/")):
        return  # the step's own files (./configure): they exist only once staged
    found = os.path.exists(prog) if prog.startswith("/") else shutil.which(
        prog, path=env.get("PATH", "")) is not None
    if not found:
        raise EnvironmentProblem(
            f"program not found: {prog}", step=step,
            hint=f"install {prog} or put it on PATH (PATH={env.get('PATH', '')})",
        )


def _in_thread(fn: Callable[[bytes], str], data: bytes) -> Future[str]:
    """``fn(data)`` on a thread of its own; its result or exception from ``.result()``."""
    future: Future[str] = Future()

    def run() -> None:
        try:
            future.set_result(fn(data))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="log-put", daemon=True).start()
    return future


class _Paths:
    """Logical -> real paths; a sandbox binds the real ones at the logical ones instead."""

    def __init__(self, workdir: Path, toolcache: Path, *, bound: bool = False) -> None:
        self.pairs = () if bound else ((WORKDIR, str(workdir)), (TOOLCACHE, str(toolcache)))

    def sub(self, text: str) -> str:
        for logical, real in self.pairs:
            text = text.replace(logical, real)
        return text
