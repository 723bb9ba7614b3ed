"""Which BuildAction a node runs: shell commands, a cross toolchain, or the image assembler."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path

from crossplan.backends.toolchains.base import BuildAction, Toolchain
from crossplan.cache.store import Entry
from crossplan.errors import StepFailed
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import PlannedNode
from crossplan.recipes.models import ShellStep, Step

__all__ = ["APPENDED", "ImageAssembler", "ToolchainResolver", "make_action_factory"]

# A step's own value of these is appended to the toolchain's (which carries reproducibility
# flags such as --remap-path-prefix) instead of replacing it.
APPENDED = frozenset({"RUSTFLAGS"})

# (step id, step) -> the toolchain that builds it.
ToolchainResolver = Callable[[str, Step], Toolchain]
# (node, work dir, deps' entries) -> writes the image into the work dir; returns the action.
ImageAssembler = Callable[[PlannedNode, Path, Mapping[NodeId, Entry]], BuildAction]


def make_action_factory(
    toolchains: ToolchainResolver,
    images: ImageAssembler,
    toolcache: Path,
) -> Callable[[PlannedNode, Path, Mapping[NodeId, Entry]], BuildAction]:
    def factory(pn: PlannedNode, workdir: Path, deps: Mapping[NodeId, Entry]) -> BuildAction:
        step = pn.step
        if isinstance(step, ShellStep):
            return BuildAction(commands=(step.command,), env=dict(step.env), outputs=step.outputs)
        if step.kind == "image":
            return images(pn, workdir, deps)
        if pn.platform is None:
            raise StepFailed(
                f"{step.kind} steps build per platform; remove platform_independent",
                step=pn.id.step,
            )
        tc = toolchains(pn.id.step, step)
        cache = toolcache / tc.name
        cache.mkdir(parents=True, exist_ok=True)
        action = tc.action(step, pn.platform, workdir, cache)
        if step.env:
            action = dataclasses.replace(action, env=_merge_env(action.env, step.env))
        return action

    return factory


def _merge_env(toolchain: Mapping[str, str], step: Mapping[str, str]) -> dict[str, str]:
    env = {**toolchain, **step}
    for var in APPENDED & set(step) & set(toolchain):
        env[var] = f"{toolchain[var]} {step[var]}".strip()
    return env
