"""Image actions through the executor protocol: the node's backend builds its layout into a
work dir; the layout is collected into the store like any output."""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping

from crossplan.cache.store import Entry, Store
from crossplan.errors import EnvironmentProblem, StepFailed
from crossplan.executors.events import OnEvent, StepEvent
from crossplan.executors.host import log_path
from crossplan.executors.protocol import ActionResult, dep_outputs
from crossplan.executors.workdir import collect_outputs, discard, new_workdir
from crossplan.images.protocol import ImageBackend
from crossplan.planner.actions import Action
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import PlannedNode

__all__ = ["ImageExecutor"]


class ImageExecutor:
    """Executes image Actions with the backend each names (``Action.backend``); ``on_event``
    hears the ``assembling`` phase."""

    def __init__(self, nodes: Mapping[NodeId, PlannedNode], store: Store,
                 backends: Mapping[str, ImageBackend], *, out: Store | None = None,
                 on_event: OnEvent | None = None, label: str = "") -> None:
        self.label = label  # the recipe file: logs are kept per project
        self.nodes = nodes
        self.store = store  # the backends read deps' outputs from theirs
        self.out = out or store  # the layout and log are collected here
        self.backends = backends
        self.on_event: OnEvent = on_event or (lambda e: None)

    def execute(self, action: Action, deps: Mapping[NodeId, Entry]) -> ActionResult:
        t0 = time.monotonic()
        node = action.node
        key = action.key(dep_outputs(deps))
        backend = self.backends[action.backend or "oci"]
        workdir = new_workdir(self.store, str(node))
        log = workdir / ".crossplan.log"
        keep = log_path(self.store, node, self.label)
        try:
            self.on_event(StepEvent("phase", node, key, message=f"assembling ({backend.name})"))
            outputs = backend.build(self.nodes[node], workdir, deps)
            log.touch()
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, keep)
            files = collect_outputs(workdir, outputs, self.out, step=str(node))
            log_digest = self.out.put_bytes(log.read_bytes())
            secs = time.monotonic() - t0
            entry = Entry(key, str(node), files, log_digest, secs, time.time(), {})
            return ActionResult(key, entry, "built", secs, 0, keep)
        except EnvironmentProblem:
            raise
        except OSError as exc:
            raise StepFailed(f"{exc}", step=str(node)) from exc
        finally:
            discard(workdir)


