"""Expand a recipe into a networkx DiGraph of (step, platform) nodes, and check it is a DAG."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from crossplan.errors import RecipeError
from crossplan.platforms import Platform, parse_platforms
from crossplan.recipes.models import ImageStep, Recipe, Step

__all__ = ["ANY", "NodeId", "expand", "step_deps"]

ANY = "any"


@dataclass(frozen=True, order=True)
class NodeId:
    """A node of the plan: a step for one target platform (``any`` when one build serves all)."""

    step: str
    platform: str

    def __str__(self) -> str:
        return self.step if self.platform == ANY else f"{self.step}@{self.platform}"


def step_deps(step: Step) -> tuple[str, ...]:
    """Every step this one consumes: ``deps`` plus, for images, ``copy.from``."""
    deps = list(step.deps)
    if isinstance(step, ImageStep):
        deps += [c.from_ for c in step.copy_ if c.from_ not in deps]
    return tuple(deps)


def _step_graph(recipe: Recipe) -> nx.DiGraph[str]:
    g: nx.DiGraph[str] = nx.DiGraph()
    for sid, step in recipe.steps.items():
        g.add_node(sid)
        for dep in step_deps(step):
            g.add_edge(dep, sid)
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return g
    loop = [cycle[0][0]] + [v for _, v in cycle]
    raise RecipeError(
        "dependency cycle: " + " -> ".join(loop),
        file=recipe.label_of(loop[0]),
        step=loop[0],
        hint="remove one of these deps so the steps form a DAG",
    )


def is_multi(step: Step) -> bool:
    """Image steps are one node spanning all their platforms."""
    return isinstance(step, ImageStep)


def step_platforms(step: Step, targets: tuple[Platform, ...]) -> tuple[Platform, ...]:
    if step.platforms is None:
        return targets
    wanted = set(parse_platforms(list(step.platforms)))
    return tuple(p for p in targets if p in wanted)


def expand(recipe: Recipe, targets: tuple[Platform, ...]) -> nx.DiGraph[NodeId]:
    """One node per (step, platform); node attrs: ``platform`` (Platform | None), ``platforms``."""
    steps_g = _step_graph(recipe)
    g: nx.DiGraph[NodeId] = nx.DiGraph()
    for sid in nx.lexicographical_topological_sort(steps_g):
        step = recipe.steps[sid]
        plats = step_platforms(step, targets)
        if step.platform_independent or is_multi(step):
            nodes: list[tuple[NodeId, Platform | None]] = [(NodeId(sid, ANY), None)]
        else:
            nodes = [(NodeId(sid, str(p)), p) for p in plats]
        for node, plat in nodes:
            g.add_node(node, platform=plat, platforms=plats)
            for dep in step_deps(step):
                dep_step = recipe.steps[dep]
                if dep_step.platform_independent:
                    g.add_edge(NodeId(dep, ANY), node)
                    continue
                if is_multi(dep_step):
                    raise RecipeError(
                        f"cannot depend on image step '{dep}'", file=recipe.label_of(sid),
                        step=sid,
                        hint="depend on the steps that build the files instead",
                    )
                need = [plat] if plat is not None else list(plats)
                if plat is None and not is_multi(step):
                    raise RecipeError(
                        f"platform-independent step depends on per-platform step '{dep}'",
                        file=recipe.label_of(sid), step=sid,
                        hint=f"mark '{dep}' platform_independent too, or drop platform_independent",
                    )
                for p in need:
                    assert p is not None
                    dep_node = NodeId(dep, str(p))
                    if dep_node not in g:
                        raise RecipeError(
                            f"dep '{dep}' is not built for {p}", file=recipe.label_of(sid),
                            step=sid,
                            hint=f"add {p} to the platforms of step '{dep}'",
                        )
                    g.add_edge(dep_node, node)
    return g
