"""Planner: expand recipes into a DAG of (step, platform) nodes with content-addressed keys."""

from crossplan.planner.digest import StatMemo, TreeDigest, tree_digest
from crossplan.planner.graph import ANY, NodeId
from crossplan.planner.plan import Fingerprinter, Plan, PlannedNode, make_plan

__all__ = [
    "ANY",
    "Fingerprinter",
    "NodeId",
    "Plan",
    "PlannedNode",
    "StatMemo",
    "TreeDigest",
    "make_plan",
    "tree_digest",
]
