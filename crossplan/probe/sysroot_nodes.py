"""Which compile nodes link against a sysroot, and its facts per node (a failure is deferred
to the nodes that need it, like a missing toolchain)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from crossplan.errors import CrossplanError, EnvironmentProblem
from crossplan.network import Offline
from crossplan.planner.graph import NodeId
from crossplan.planner.sysroot import SysrootFact
from crossplan.platforms import Platform
from crossplan.probe.sysroots import Unlocked
from crossplan.recipes.models import Recipe

__all__ = ["probe_sysroots"]


def probe_sysroots(
    recipe: Recipe, nodes: Mapping[NodeId, Platform | None],
    provide: Callable[[str, Platform], SysrootFact] | None,
) -> tuple[dict[NodeId, SysrootFact], dict[NodeId, CrossplanError]]:
    """(node -> its sysroot, node -> why it has none) for steps with ``sysroot = "NAME"``.
    ``Unlocked`` (``--locked``, the lock does not pin it) and ``Offline`` (it would need
    the mirror) are raised: they stop the plan."""
    found: dict[NodeId, SysrootFact] = {}
    failed: dict[NodeId, CrossplanError] = {}
    for node, platform in nodes.items():
        name = getattr(recipe.steps[node.step], "sysroot", None)
        if not name or platform is None:
            continue
        try:
            if provide is None:
                raise EnvironmentProblem("sysroots were not probed for this plan")
            found[node] = provide(name, platform)
        except CrossplanError as exc:
            if isinstance(exc, (Unlocked, Offline)):
                raise
            exc.step = exc.step or node.step
            exc.file = exc.file or recipe.label_of(node.step)
            exc.args = (exc.render(),)
            failed[node] = exc
    return found, failed
