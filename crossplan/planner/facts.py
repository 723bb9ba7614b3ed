"""Facts: what the world answered for planning, gathered by the probe into one frozen value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from crossplan.errors import CrossplanError
from crossplan.planner.graph import NodeId
from crossplan.planner.sysroot import SysrootFact
from crossplan.planner.tree import TreeDigest
from crossplan.platforms import Platform

__all__ = ["HOME_NAME", "STEP_ETC", "TMP_NAME", "TOOLCACHE", "WORKDIR", "WORK_HOME", "WORK_TMP",
           "Facts", "Probed", "ToolCommand"]

# Logical paths commands are written against. An executor stages the input root and binds
# it at WORKDIR (a sandbox) or substitutes its real directory (the plain host executor).
WORKDIR = "/crossplan/work"
# Toolchains' own caches (GOCACHE, zig, cargo target): speed only, never in keys.
TOOLCACHE = "/crossplan/toolcache"
HOME_NAME, TMP_NAME = ".home", ".tmp"  # in the work dir: a step's HOME and temporary files
WORK_HOME = f"{WORKDIR}/{HOME_NAME}"
# A step's temporary files: TMPDIR, and /tmp in a local sandbox (a link to it: one mount
# with the work dir, so a file made in /tmp is renamed into place, not copied: `go build`
# links in $WORK under GOTMPDIR=/tmp, then moves the binary to its -o path).
WORK_TMP = f"{WORKDIR}/{TMP_NAME}"
# The /etc files a sandboxed step sees (local bubblewrap and REAPI workers alike): root's
# home is the step's HOME; nothing of the host's users, groups or name service.
STEP_ETC = {
    "passwd": f"root:x:0:0:root:{WORK_HOME}:/bin/sh\n"
              "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "group": "root:x:0:\nnogroup:x:65534:\n",
    "hosts": "127.0.0.1 localhost\n::1 localhost\n",
    "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
}

Probed = Literal["inputs", "toolchains", "bases"]


@dataclass(frozen=True)
class ToolCommand:
    """A toolchain's commands for one (step, platform), written against WORKDIR/TOOLCACHE."""

    commands: tuple[tuple[str, ...], ...]
    env: Mapping[str, str] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    executables: tuple[str, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)  # rel path -> text (wrappers)
    toolchain: str = ""  # its name (go, rust, c): the toolcache sub-directory
    roots: tuple[str, ...] = ()  # host directories of the toolchain, read-only in a sandbox


@dataclass(frozen=True)
class Facts:
    """Everything ``make_plan`` needs beyond the recipe and the platforms.

    ``identities`` is what of the outside world enters each node's key: a toolchain's
    version identity for compile nodes, the pinned base (and generator) for image nodes.
    ``probed`` says what was asked: a plan for printing graphs may skip toolchains and bases
    (their identities are then None and compile commands unknown)."""

    build_platform: Platform
    source_date_epoch: int
    env: Mapping[str, str]  # allowlisted host variables: passed to steps, enter keys
    host_env: Mapping[str, str]  # PATH, LANG, TERM: passed to steps, not in keys
    trees: Mapping[str, TreeDigest | None]  # step id -> its input tree
    identities: Mapping[NodeId, str | None] = field(default_factory=dict)
    commands: Mapping[NodeId, ToolCommand] = field(default_factory=dict)
    backends: Mapping[str, str] = field(default_factory=dict)  # image step -> oci | buildx
    probed: frozenset[Probed] = frozenset({"inputs"})
    sandbox: str = "off"  # bwrap | off: how local steps run (enters command nodes' keys)
    sysroots: Mapping[NodeId, SysrootFact] = field(default_factory=dict)  # step sysroot = "x"
    notes: tuple[str, ...] = ()  # warnings for the user (e.g. what is lost without a sandbox)
    # what one node's build will fail with (found while probing; the rest still builds)
    deferred: Mapping[NodeId, CrossplanError] = field(default_factory=dict, compare=False)
