"""The REAPI executor, the remote twin of the host executor: an Action becomes Command +
input root + Action (SHA-256), the server's action cache is asked first, missing blobs are
uploaded, Execute's operation stream is shown as phases, outputs are fetched into the store.
Actions that cannot travel (images, network, system toolchains) go to the local executor."""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc

from crossplan.backends.host import Interrupted, stopping
from crossplan.cache.store import Entry, OutputFile, Store
from crossplan.errors import CrossplanError, EnvironmentProblem, StepFailed
from crossplan.executors.events import OnEvent, StepEvent
from crossplan.executors.host import log_path
from crossplan.executors.protocol import ActionResult, Executor, dep_outputs
from crossplan.executors.reapi.cas import Cas, CorruptBlob
from crossplan.executors.reapi.channel import RETRYABLE, Endpoint, Retrying, open_channel
from crossplan.executors.reapi.command import (
    TOOLCHAIN_PROPERTY,
    WORK,
    command_for,
    platform_for,
    remote_reason,
    system_fingerprint,
    tool_dirs,
)
from crossplan.executors.reapi.outputs import fetch_log, fetch_outputs
from crossplan.executors.reapi.tree import Blob, DigestMap, InputTree, digest_of, scan_tool
from crossplan.executors.workdir import InputChanged
from crossplan.planner.actions import Action
from crossplan.planner.facts import STEP_ETC
from crossplan.planner.graph import NodeId
from crossplan_protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from crossplan_protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc

__all__ = ["RemoteExecutor"]

_STAGES = {1: "cache check", 2: "queued", 3: "executing", 4: "completed"}
_LOST = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.INTERNAL,
         grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED)


class RemoteExecutor:
    """Runs command Actions on a REAPI cluster; ``local`` runs what cannot go remote.
    ``deferred``: nodes whose planning failed (their error is raised, as locally)."""

    def __init__(
        self, ep: Endpoint, store: Store, local: Executor, *, out: Store | None = None,
        label: str = "", on_event: OnEvent | None = None,
        deferred: Mapping[NodeId, CrossplanError] | None = None,
        channel: grpc.Channel | None = None, memo: Path | None = None,
    ) -> None:
        self.ep, self.store, self.local = ep, store, local
        self.out = out or store
        self.label = label
        self.on_event: OnEvent = on_event or (lambda e: None)
        self.deferred = dict(deferred or {})
        self._channel = channel
        self._lock = threading.Lock()
        self._ready = False
        self.retry = Retrying(ep)
        self.digests = DigestMap(self.out.root)
        self.memo = memo or self.out.root / "reapi" / "trees"  # toolchain trees' scans
        self._calls: dict[int, tuple[grpc.Future, list[str]]] = {}
        self._present: set[str] = set()  # digests the CAS had or was sent, in this run

    # -- connection ---------------------------------------------------------------------
    def _connect(self) -> None:
        with self._lock:
            if self._ready:
                return
            if self._channel is None:
                self._channel = open_channel(self.ep)
            self.cas = Cas(self._channel, self.ep, self.retry)
            self.cas.check_capabilities()
            self.ac = re_grpc.ActionCacheStub(self._channel)
            self.exe = re_grpc.ExecutionStub(self._channel)
            self.ops = operations_pb2_grpc.OperationsStub(self._channel)
            threading.Thread(target=_cancel_on_stop, args=(weakref.ref(self),),
                             daemon=True).start()
            self._ready = True

    # -- the protocol ---------------------------------------------------------------------
    def execute(self, action: Action, deps: Mapping[NodeId, Entry]) -> ActionResult:
        node = action.node
        if node in self.deferred:
            raise self.deferred[node]
        if remote_reason(action, self.ep.system_toolchains) is not None:
            return self.local.execute(action, deps)
        t0 = time.monotonic()
        key = action.key(dep_outputs(deps))
        self._connect()
        self._phase(action, key, "staging (remote)")
        tree = self._input_tree(action, deps)
        root = tree.build()
        command = command_for(action)
        cmd_bytes = command.SerializeToString(deterministic=True)
        cmd_digest = digest_of(cmd_bytes)
        tree.blobs[cmd_digest.hash] = Blob(cmd_digest, data=cmd_bytes)
        platform = platform_for(action, self.ep.properties)
        command.platform.CopyFrom(platform)
        ra = re_pb2.Action(command_digest=cmd_digest, input_root_digest=root,
                           platform=platform, do_not_cache=action.network)
        if action.timeout:
            ra.timeout.FromNanoseconds(int(action.timeout * 1e9))
        ra_bytes = ra.SerializeToString(deterministic=True)
        ra_digest = digest_of(ra_bytes)
        tree.blobs[ra_digest.hash] = Blob(ra_digest, data=ra_bytes)

        cached_result = self._cached(ra_digest)
        files = self._fetch(action, cached_result) if cached_result is not None else None
        if cached_result is not None and files is not None:
            result, cached = cached_result, True
            worker = result.execution_metadata.worker
        else:
            cached = False
            self._upload(action, key, tree.blobs)
            result, worker = self._execute(action, key, ra_digest, tree.blobs)
            files = self._fetch(action, result)
            if files is None:
                raise StepFailed("the outputs the cluster reported could not be fetched "
                                 "intact", step=str(node), hint="run again")
        log = fetch_log(result, self.cas)
        keep = log_path(self.out, node, self.label)
        keep.parent.mkdir(parents=True, exist_ok=True)
        keep.write_bytes(log)
        if result.exit_code != 0:
            raise self._failed(action, result.exit_code, log, keep, worker)
        secs = time.monotonic() - t0
        meta = {"remote": {"endpoint": self.ep.url, "instance": self.ep.instance,
                           "action": f"{ra_digest.hash}/{ra_digest.size_bytes}",
                           "worker": worker, "cached": cached}}
        entry = Entry(key, str(node), files, self.out.put_bytes(log), secs, time.time(), meta)
        self._phase(action, key, f"{'action cache hit' if cached else 'ran'} on {worker or '?'}")
        return ActionResult(key, entry, "substituted" if cached else "built", secs, 0, keep)

    # -- steps ----------------------------------------------------------------------------
    def _phase(self, action: Action, key: str, message: str) -> None:
        self.on_event(StepEvent("phase", action.node, key, message=message))

    def _input_tree(self, action: Action, deps: Mapping[NodeId, Entry]) -> InputTree:
        tree = InputTree()
        tree.add_dir(WORK)
        for f in action.inputs:
            path = f"{WORK}/{f.path}"
            if f.link is not None:
                tree.add_link(path, f.link)
                continue
            assert f.origin is not None
            try:
                b3, d = self.digests.of_file(f.origin, f.digest)
            except FileNotFoundError:
                raise InputChanged(f.path, "removed") from None
            if b3 != f.digest:
                raise InputChanged(f.path, f"planned blake3 {f.digest[:12]}, now {b3[:12]}")
            tree.add_file(path, Blob(d, path=f.origin), f.executable)
        for rel, text in action.files:
            tree.add_bytes(f"{WORK}/{rel}", text.encode())
        for dep in action.deps:
            for of in deps[dep.node].files:
                path = f"{WORK}/{dep.dir}/{of.path}"
                if of.link is not None:
                    tree.add_link(path, of.link)
                    continue
                blob_path = str(self.store.blob_path(of.digest))
                _, d = self.digests.of_file(blob_path, of.digest)
                tree.add_file(path, Blob(d, path=blob_path), bool(of.mode & 0o111))
        for name, text in STEP_ETC.items():
            tree.add_bytes(f"etc/{name}", text.encode())
        for rel, tool in tool_dirs(action):
            tree.add_subtree(rel, scan_tool(tool, self.memo, self.digests))
        return tree

    def _cached(self, digest: re_pb2.Digest) -> re_pb2.ActionResult | None:
        req = re_pb2.GetActionResultRequest(instance_name=self.ep.instance, action_digest=digest)
        try:
            r = self.retry(lambda: self.ac.GetActionResult(req, timeout=30))
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise self._rpc_error(exc, "GetActionResult") from None
        return r if r.exit_code == 0 else None

    def _fetch(self, action: Action,
               result: re_pb2.ActionResult) -> tuple[OutputFile, ...] | None:
        if result.exit_code != 0:
            return ()
        try:
            return fetch_outputs(result, action.outputs, self.cas, self.out, self.digests,
                                 step=str(action.node))
        except CorruptBlob:
            return None  # never a wrong result: run it again
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None  # evicted from the CAS since: run it again
            raise self._rpc_error(exc, "reading outputs") from None

    def _upload(self, action: Action, key: str, blobs: Mapping[str, Blob]) -> None:
        """Send what the CAS lacks. Blobs known present in this run (toolchain trees, shared
        deps) are not asked about again; a server that evicted one anyway answers Execute
        with FAILED_PRECONDITION, and everything is asked about again then."""
        ask = [b.digest for h, b in blobs.items() if h not in self._present]
        missing = self.cas.find_missing(ask)
        if missing:
            total = sum(d.size_bytes for d in missing)
            self._phase(action, key, f"uploading {len(missing)} blob(s), {total >> 10} KiB")
            self.cas.upload(blobs[d.hash] for d in missing)
        self._present.update(d.hash for d in ask)

    def _execute(self, action: Action, key: str, digest: re_pb2.Digest,
                 blobs: Mapping[str, Blob]) -> tuple[re_pb2.ActionResult, str]:
        """Execute (or, after a dropped stream, WaitExecution) until the operation is done;
        lost workers and restarted servers are retried with backoff."""
        isa = action.requirements.isa
        delay, tries, name = self.ep.backoff, 0, ""
        queued_since: float | None = None
        while True:
            if stopping():
                raise Interrupted(str(action.node))
            if name:
                call = self.exe.WaitExecution(re_pb2.WaitExecutionRequest(name=name))
            else:
                call = self.exe.Execute(re_pb2.ExecuteRequest(
                    instance_name=self.ep.instance, action_digest=digest,
                    skip_cache_lookup=tries > 0))
            names: list[str] = []
            self._calls[id(call)] = (call, names)
            try:
                for op in call:
                    name = op.name
                    names[:] = [name]
                    meta = re_pb2.ExecuteOperationMetadata()
                    op.metadata.Unpack(meta)
                    stage = _STAGES.get(meta.stage, "")
                    if stage == "queued":
                        queued_since = queued_since or time.monotonic()
                        if time.monotonic() - queued_since > self.ep.queue_timeout:
                            call.cancel()
                            raise self._no_worker(action, f"queued for more than "
                                                  f"{self.ep.queue_timeout:g} s")
                    elif stage:
                        queued_since = None
                    if stage and not op.done:
                        self._phase(action, key, f"remote: {stage} (ISA={isa})")
                    if not op.done:
                        continue
                    if op.HasField("error"):
                        code, msg = op.error.code, op.error.message
                        resp = None
                    else:
                        resp = re_pb2.ExecuteResponse()
                        op.response.Unpack(resp)
                        code, msg = resp.status.code, resp.status.message
                    if code == 0 and resp is not None:
                        return resp.result, resp.result.execution_metadata.worker
                    status = _code(code)
                    if status == grpc.StatusCode.DEADLINE_EXCEEDED:
                        raise StepFailed(f"timed out on the cluster after {action.timeout} s",
                                         step=str(action.node))
                    if status == grpc.StatusCode.FAILED_PRECONDITION and "ISA" in msg:
                        raise self._no_worker(action, msg)
                    if status == grpc.StatusCode.FAILED_PRECONDITION:
                        self._present.clear()  # inputs evicted meanwhile: ask again
                        self._upload(action, key, blobs)
                    elif status not in _LOST or tries >= self.ep.retries:
                        raise EnvironmentProblem(
                            f"remote execution failed: {status.name if status else code}: {msg}",
                            step=str(action.node), hint="see the server's and workers' logs")
                    name = ""  # execute it again: the worker was lost or the job aborted
                    break
                else:
                    name = name if name else ""  # stream ended without a result: wait on it
            except grpc.RpcError as exc:
                if stopping():
                    raise Interrupted(str(action.node)) from None
                c = exc.code()
                if c == grpc.StatusCode.FAILED_PRECONDITION:
                    raise self._no_worker(action, exc.details() or "") from None
                if c == grpc.StatusCode.NOT_FOUND and name:
                    name = ""  # the server forgot the operation (restarted): execute again
                elif c not in (*RETRYABLE, *_LOST) or tries >= self.ep.retries:
                    raise self._rpc_error(exc, "Execute", str(action.node)) from None
            finally:
                self._calls.pop(id(call), None)
            tries += 1
            self._phase(action, key, f"remote: retrying ({tries}/{self.ep.retries})")
            time.sleep(delay)
            delay = min(delay * 2, 4.0)

    # -- errors ---------------------------------------------------------------------------
    def _no_worker(self, action: Action, why: str) -> EnvironmentProblem:
        wanted = dict(action.requirements.as_json())
        fp = system_fingerprint(action)
        if fp is not None:
            wanted[TOOLCHAIN_PROPERTY] = fp
        props = ", ".join(f"{k}={v}" for k, v in sorted(wanted.items()))
        hint = (f"add a worker pool with ISA={action.requirements.isa} to the cluster, or "
                "build this step with --executor local")
        if fp is not None:
            hint = (f"a worker with exactly this toolchain must advertise "
                    f"{TOOLCHAIN_PROPERTY}={fp}; or build it here: [execution] "
                    'system_toolchains = "local"')
        return EnvironmentProblem(
            f"no worker of {self.ep.url} (instance '{self.ep.instance}') offers {props} "
            f"({why})", step=str(action.node), hint=hint)

    def _rpc_error(self, exc: grpc.RpcError, what: str, step: str | None = None) -> CrossplanError:
        c = exc.code()
        if c in RETRYABLE:
            from crossplan.executors.reapi.channel import unreachable

            return unreachable(self.ep, exc, step)
        if c == grpc.StatusCode.UNIMPLEMENTED:
            return EnvironmentProblem(f"{self.ep.url} does not implement {what}", step=step,
                                      hint="the endpoint must be an REAPI v2 server")
        return EnvironmentProblem(f"{what} failed: {c.name}: {exc.details()}", step=step,
                                  hint="see the server's log")

    def _failed(self, action: Action, code: int, log: bytes, keep: Path,
                worker: str) -> StepFailed:
        tail = "\n".join(log.decode(errors="replace").splitlines()[-20:])
        return StepFailed(f"command exited with status {code} (remote worker {worker or '?'})",
                          step=str(action.node), file=self.label, log_tail=tail,
                          hint=f"full log: {keep}", log=keep)


def _cancel_on_stop(ref: weakref.ref[RemoteExecutor]) -> None:
    """Ctrl-C / SIGTERM (``stop_commands``): cancel the running Execute streams and their
    operations on the server. The watcher ends with its executor (API users run many)."""
    while True:
        time.sleep(0.1)
        ex = ref()
        if ex is None:
            return
        if stopping():
            for call, names in list(ex._calls.values()):
                for name in names:
                    with contextlib.suppress(grpc.RpcError):
                        ex.ops.CancelOperation(
                            operations_pb2.CancelOperationRequest(name=name), timeout=2)
                call.cancel()
            time.sleep(0.5)
        del ex


def _code(value: int) -> grpc.StatusCode | None:
    for c in grpc.StatusCode:
        if c.value[0] == value:
            return c
    return None
