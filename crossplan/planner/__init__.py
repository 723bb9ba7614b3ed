"""The pure planner: (recipe, platforms, facts) -> a Plan of nodes, their Actions and keys.
Nothing here touches the network, processes or the store."""

from crossplan.planner.actions import Action
from crossplan.planner.facts import Facts
from crossplan.planner.graph import ANY, NodeId
from crossplan.planner.plan import Plan, PlannedNode, make_plan
from crossplan.planner.tree import TreeDigest

__all__ = ["ANY", "Action", "Facts", "NodeId", "Plan", "PlannedNode", "TreeDigest", "make_plan"]
