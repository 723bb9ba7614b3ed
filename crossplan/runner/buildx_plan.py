"""Plan-time side of the buildx backend: which backend builds an image, its key pin, and
``compile = "container"`` plans (compile steps leave the host plan and enter the image's key).

Backend rule for ``backend = "auto"``: buildx when the recipe has a ``[buildx]`` table and
the Docker daemon answers a ping (3 s); otherwise the daemonless OCI backend. An ``auto``
recipe without ``[buildx]`` never needs Docker. ``backend = "buildx"`` always uses buildx
(an unreachable daemon is then an EnvironmentProblem, exit 3).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crossplan.backends.buildx.bases import check_base
from crossplan.backends.buildx.binfmt import binfmt_fix, can_execute, read_binfmt
from crossplan.backends.buildx.engine import Engine, docker_host
from crossplan.backends.buildx.invoke import Buildx
from crossplan.backends.dockerfile import COMPILE_KINDS, DOCKERFILE_SCHEMA
from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.planner.digest import TreeDigest
from crossplan.planner.graph import ANY, NodeId, step_deps
from crossplan.planner.keys import step_fields
from crossplan.planner.plan import Fingerprinter, Plan, PlannedNode
from crossplan.platforms import Platform, build_platform
from crossplan.recipes.models import ImageStep, Recipe, Step

__all__ = [
    "ContainerImageNode",
    "adapt_fingerprinter",
    "adapt_plan",
    "buildx_pin",
    "check_emulation",
    "container_compiled",
    "image_backend",
    "pruned_steps",
    "uses_buildx",
]

_reachable: dict[str, bool] = {}
_lock = threading.Lock()


def _daemon_reachable() -> bool:
    host = docker_host()
    with _lock:
        if host not in _reachable:
            engine = Engine()
            _reachable[host] = engine.reachable(timeout=3)
            engine.close()
        return _reachable[host]


def image_backend(recipe: Recipe, step: ImageStep) -> str:
    """``buildx`` or ``oci`` for an image step (see the module doc for ``auto``)."""
    if step.backend != "auto":
        return step.backend
    if "buildx" not in recipe.model_fields_set:
        return "oci"
    return "buildx" if _daemon_reachable() else "oci"


def uses_buildx(recipe: Recipe, sid: str) -> bool:
    step = recipe.steps.get(sid)
    return isinstance(step, ImageStep) and image_backend(recipe, step) == "buildx"


def container_compiled(recipe: Recipe) -> dict[str, tuple[str, ...]]:
    """Image step -> the go/rust/c steps it compiles in buildx (``compile = "container"``)."""
    if recipe.buildx.compile != "container":
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for sid, step in recipe.steps.items():
        if isinstance(step, ImageStep) and uses_buildx(recipe, sid):
            steps = tuple(dict.fromkeys(
                c.from_ for c in step.copy_ if recipe.steps[c.from_].kind in COMPILE_KINDS
            ))
            if steps:
                out[sid] = steps
    return out


def pruned_steps(recipe: Recipe, compiled: Mapping[str, tuple[str, ...]]) -> set[str]:
    """Compile steps no host node needs any more: every consumer compiles them in buildx."""
    inside = {s for steps in compiled.values() for s in steps}
    pruned = set()
    for s in inside:
        consumers = {t for t, st in recipe.steps.items() if s in step_deps(st)}
        if all(t in compiled and s in compiled[t] for t in consumers):
            pruned.add(s)
    return pruned


def adapt_fingerprinter(recipe: Recipe, fp: Fingerprinter) -> Fingerprinter:
    """Skip host toolchain discovery for steps that will only compile in containers."""
    pruned = pruned_steps(recipe, container_compiled(recipe))
    if not pruned:
        return fp

    def fingerprint(
        sid: str, step: Step, platform: Platform | None, platforms: tuple[Platform, ...]
    ) -> str | None:
        return "compiled in buildx" if sid in pruned else fp(sid, step, platform, platforms)

    return fingerprint


@dataclass(frozen=True)
class ContainerImageNode(PlannedNode):
    """An image node whose compile steps run inside buildx: it carries their input trees."""

    sources: Mapping[str, TreeDigest | None] = field(default_factory=dict, compare=False,
                                                     repr=False)


def adapt_plan(plan: Plan) -> Plan:
    """Drop host compile nodes that only feed ``compile = "container"`` images; those image
    nodes stop depending on them and instead hash their sources and step fields."""
    recipe = plan.recipe
    compiled = container_compiled(recipe)
    if not compiled:
        return plan
    pruned = pruned_steps(recipe, compiled)
    graph = plan.graph.copy()
    nodes: dict[NodeId, PlannedNode] = {}
    for nid, pn in plan.nodes.items():
        if nid.step in pruned:
            graph.remove_node(nid)
            continue
        if nid.step in compiled:
            pn = _container_node(plan, pn, compiled[nid.step], graph)
        nodes[nid] = pn
    return Plan(recipe, plan.platforms, plan.build_platform, plan.source_date_epoch, nodes, graph)


def _container_node(plan: Plan, pn: PlannedNode, steps: tuple[str, ...], graph: Any) -> PlannedNode:
    recipe = plan.recipe
    deps = [d for d in pn.deps if d.step not in steps]
    for d in pn.deps:
        if d.step in steps and graph.has_edge(d, pn.id):
            graph.remove_edge(d, pn.id)
    inside: dict[str, Any] = {}
    sources: dict[str, TreeDigest | None] = {}
    for s in steps:
        step = recipe.steps[s]
        found = [n for n in plan.nodes.values() if n.id.step == s]
        tree = found[0].inputs if found else None
        sources[s] = tree
        inside[s] = {"kind": step.kind, "step": step_fields(step), "emulate": step.emulate,
                     "toolchain_image": step.toolchain_image,
                     "inputs": tree.digest if tree else None}
        for dep in step.deps:  # host steps a compile stage reads from deps/<dep>/
            for p in pn.platforms:
                cand = [NodeId(dep, str(p)), NodeId(dep, ANY)]
                node = next((c for c in cand if c in plan.nodes), None)
                if node is not None and node not in deps:
                    deps.append(node)
                    graph.add_edge(node, pn.id)
    components = {**pn.components, "container_compile": inside}
    return ContainerImageNode(pn.id, pn.step, pn.platform, pn.platforms, tuple(sorted(deps)),
                              components, pn.inputs, sources=sources)


def buildx_pin(recipe: Recipe, sid: str, step: ImageStep, platforms: tuple[Platform, ...]) -> str:
    """What of the outside world a buildx image depends on: the base (engine image id or
    registry digest; checked to hold every platform), toolchain images, the generator."""
    engine = Engine()
    try:
        engine.ping()
        Buildx().version()  # buildx missing: fail now, before any host step compiles
        check_emulation(recipe, sid, platforms)
        base = check_base(step.base, platforms, engine, step=sid, file=recipe.label)
        images: dict[str, str] = {}
        if recipe.buildx.compile == "container":
            images = _toolchain_pins(recipe, sid, step, platforms, engine)
    except EnvironmentProblem as exc:
        if exc.file is None and exc.step is None:  # say which recipe and step needed it
            raise EnvironmentProblem(exc.message, file=recipe.label, step=sid,
                                     hint=exc.hint) from None
        raise
    finally:
        engine.close()
    return json.dumps({
        "backend": "buildx", "dockerfile_schema": DOCKERFILE_SCHEMA, "base": base.pin,
        "compile": recipe.buildx.compile, "toolchain_images": images,
    }, sort_keys=True)


def check_emulation(
    recipe: Recipe, sid: str, platforms: tuple[Platform, ...], *, naive: bool = False,
    builder_platforms: tuple[Platform, ...] = (),
) -> None:
    """Every platform a RUN executes on (``emulate = true`` stages, naive Dockerfiles) must
    be runnable here, natively or through QEMU binfmt; else exit 3 with the fix."""
    compiled = container_compiled(recipe).get(sid, ())
    if not naive and not any(recipe.steps[s].emulate for s in compiled):
        return
    build = build_platform()
    entries = read_binfmt()
    need = [p for p in platforms if not can_execute(p, build, entries, builder_platforms)]
    if need:
        names = ", ".join(str(p) for p in need)
        raise EnvironmentProblem(
            f"RUN steps execute on {names} (emulate = true), but this machine cannot run "
            f"{names} binaries: QEMU binfmt_misc is not registered for them",
            file=recipe.label, step=sid, hint=binfmt_fix(need),
        )


def _toolchain_pins(
    recipe: Recipe, sid: str, step: ImageStep, platforms: tuple[Platform, ...], engine: Engine
) -> dict[str, str]:
    out: dict[str, str] = {}
    build = build_platform()
    for c in step.copy_:
        dep = recipe.steps[c.from_]
        if dep.kind not in COMPILE_KINDS or c.from_ in out:
            continue
        if not dep.toolchain_image:
            raise RecipeError(
                f'step \'{c.from_}\' has no toolchain_image (needed by compile = "container")',
                file=recipe.label, step=c.from_,
                hint='add toolchain_image = "..." (an image with the compiler and a shell), '
                'or set [buildx] compile = "host"',
            )
        image_id = engine.image_id(dep.toolchain_image)
        if image_id is None:
            raise EnvironmentProblem(
                f"toolchain image {dep.toolchain_image} is not in the local engine",
                file=recipe.label, step=c.from_,
                hint="build it first (`plan toolchain-image go|zig` makes Go and zig images "
                "from PyPI wheels), or load it with `docker load`",
            )
        need = tuple(platforms) if dep.emulate else (build,)
        missing = [p for p in need if not engine.has_platform(dep.toolchain_image, p)]
        if missing:
            raise EnvironmentProblem(
                f"toolchain image {dep.toolchain_image} lacks "
                + ", ".join(str(p) for p in missing), file=recipe.label, step=c.from_,
                hint="compile stages run on the build platform"
                + (" and, with emulate = true, on every target" if dep.emulate else "")
                + "; rebuild the image for those platforms",
            )
        out[c.from_] = f"{dep.toolchain_image}@{image_id}"
    return out
