"""The smoke run of a built binary as an Action (pure): it asks for the target's ISA (a
native worker of a REAPI cluster) and captures the binary's exit code and output as files."""

from __future__ import annotations

from collections.abc import Sequence

from crossplan.planner.actions import Action, DepInput, Requirements, isa
from crossplan.planner.graph import NodeId
from crossplan.platforms import Platform

__all__ = ["SMOKE_CODE", "SMOKE_OUT", "smoke_action", "smoke_node"]

SMOKE_OUT = "smoke.out"  # stdout and stderr of the binary
SMOKE_CODE = "smoke.code"  # its exit status, one line
_DEP_DIR = "deps/built"
_SCHEMA = 1


def smoke_node(node: NodeId) -> NodeId:
    """The id a smoke run of ``node`` is logged under (never a node of the plan)."""
    return NodeId(f"{node.step}#smoke", node.platform)


def smoke_action(
    node: NodeId, platform: Platform, binary: str, args: Sequence[str],
    timeout: float = 120.0,
) -> Action:
    """Run ``binary`` (an output path of ``node``) with ``args`` on a machine of the
    target's ISA. The command always succeeds: the binary's status is an output, so a
    failing smoke test is a result to report, not a failed action."""
    exe = f"./{_DEP_DIR}/{binary}"
    script = f'"{exe}" "$@" >{SMOKE_OUT} 2>&1 </dev/null; echo $? >{SMOKE_CODE}'
    components = {"kind": "smoke", "schema": _SCHEMA, "node": str(node), "binary": binary,
                  "args": list(args), "platform": str(platform), "timeout": timeout}
    return Action(
        node=smoke_node(node), kind="command",
        commands=(("sh", "-c", script, "smoke", *args),),
        env=(("LC_ALL", "C"), ("PATH", "/usr/local/bin:/usr/bin:/bin"), ("TZ", "UTC")),
        inputs=(), deps=(DepInput(node, _DEP_DIR),), outputs=(SMOKE_OUT, SMOKE_CODE),
        requirements=Requirements(isa(platform)), components=components, timeout=timeout,
    )
