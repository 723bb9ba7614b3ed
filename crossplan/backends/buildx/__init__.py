"""buildx backend: capability detection, base checks, strategies and pushes through buildx.

A build reads as a pipeline::

    caps = Buildx().capabilities(Engine().containerd_store())
    check_base(base, platforms, engine, step=sid)           # exit 3 if a platform is missing
    Builder(Buildx(), caps).build_layout(job, dest, scratch) # -> OCI layout (the store entry)
    Builder(Buildx(), caps).push(job, scratch)               # -> every tag + arch tags
"""

from crossplan.backends.buildx.bases import BaseCheck, check_base
from crossplan.backends.buildx.binfmt import binfmt_fix, can_execute, natively_runs, read_binfmt
from crossplan.backends.buildx.build import (
    Builder,
    BuildJob,
    CachePlan,
    NeedsPush,
    Pushed,
    cache_plan,
    choose_strategy,
)
from crossplan.backends.buildx.caps import BuilderInfo, Capabilities, parse_inspect
from crossplan.backends.buildx.engine import Engine, RunOutput, docker_host
from crossplan.backends.buildx.invoke import BuildRequest, Buildx, build_argv, classify_failure
from crossplan.backends.buildx.layouts import merge_layouts, normalize_layout, unpack_layout

__all__ = [
    "BaseCheck",
    "BuildJob",
    "BuildRequest",
    "Builder",
    "BuilderInfo",
    "Buildx",
    "CachePlan",
    "Capabilities",
    "Engine",
    "NeedsPush",
    "Pushed",
    "RunOutput",
    "binfmt_fix",
    "build_argv",
    "cache_plan",
    "can_execute",
    "check_base",
    "choose_strategy",
    "classify_failure",
    "docker_host",
    "merge_layouts",
    "natively_runs",
    "normalize_layout",
    "parse_inspect",
    "read_binfmt",
    "unpack_layout",
]
