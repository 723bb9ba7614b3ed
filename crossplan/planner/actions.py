"""Actions as values: what one (step, platform) runs, shaped like REAPI's Command + Action +
input-root Directory (argv, environment, working directory, input files by digest, declared
outputs, platform requirements, timeout), and its key."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from crossplan.hashing import hash_bytes
from crossplan.planner.facts import WORK_HOME, WORK_TMP, Facts, ToolCommand
from crossplan.planner.graph import NodeId
from crossplan.planner.keys import final_key
from crossplan.planner.tree import TreeDigest
from crossplan.platforms import Platform, reapi_isa
from crossplan.recipes.models import ImageStep, ShellStep, Step
from crossplan.redact import redact_env

__all__ = [
    "APPENDED",
    "ENV_ALLOWLIST",
    "PASS_THROUGH",
    "Action",
    "DepInput",
    "InputFile",
    "Requirements",
    "isa",
    "lower",
    "step_env",
]

# Host variables passed into steps; when set they enter the key.
ENV_ALLOWLIST = (
    "GOPROXY", "GOPRIVATE", "GONOSUMDB", "GONOPROXY", "GOSUMDB", "GOINSECURE",
    "RUSTFLAGS", "CARGO_NET_OFFLINE",
)
# Host variables every step sees (not in keys: they don't change what a hermetic step makes).
PASS_THROUGH = ("PATH", "LANG", "TERM")
# A step's own value of these is appended to the toolchain's (which carries reproducibility
# flags such as --remap-path-prefix) instead of replacing it.
APPENDED = frozenset({"RUSTFLAGS"})

ActionKind = Literal["command", "image"]


@dataclass(frozen=True)
class InputFile:
    """One file of the input root: REAPI's FileNode/SymlinkNode. ``origin`` is where its
    bytes are read from when staging (a project file; None: the text in ``Action.files``)."""

    path: str
    digest: str
    executable: bool = False
    link: str | None = None
    origin: str | None = field(default=None, compare=False)

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "digest": self.digest,
                             "mode": "0755" if self.executable else "0644"}
        if self.link is not None:
            d = {"path": self.path, "symlink": self.link}
        return d


@dataclass(frozen=True)
class DepInput:
    """A dependency's outputs, staged under ``dir`` of the input root (``deps/<id>``)."""

    node: NodeId
    dir: str


@dataclass(frozen=True)
class Requirements:
    """Which machine must run the action (REAPI platform properties)."""

    isa: str  # the build machine's for cross-compiles; a target's for target binaries
    os: str = "linux"

    def as_json(self) -> dict[str, str]:
        return {"OSFamily": self.os, "ISA": self.isa}


@dataclass(frozen=True)
class Action:
    """What a node runs. ``commands`` run in order in ``WORKDIR/workdir`` with exactly
    ``env``; the input root holds ``inputs``, ``files`` and each dep's outputs under its
    ``DepInput.dir``; ``outputs`` are collected. Image actions (``kind = "image"``) are
    executed by their image backend instead of a shell. ``components`` are the node's static
    key components; the key adds its deps' output digests (``key``)."""

    node: NodeId
    kind: ActionKind
    commands: tuple[tuple[str, ...], ...]
    env: tuple[tuple[str, str], ...]
    inputs: tuple[InputFile, ...]
    deps: tuple[DepInput, ...]
    outputs: tuple[str, ...]
    requirements: Requirements
    components: Mapping[str, Any] = field(repr=False)
    files: tuple[tuple[str, str], ...] = ()  # generated inputs: rel path -> text
    executables: tuple[str, ...] = ()  # outputs whose ELF header must match the target
    workdir: str = "."
    timeout: float | None = None
    backend: str | None = None  # image actions: oci | buildx
    toolchain: str = ""  # its toolcache sub-directory ("" : none)
    tools: tuple[str, ...] = ()  # host toolchain directories it reads (read-only)
    network: bool = False  # it may use the network: non-hermetic, never shared
    known: bool = True  # False: the toolchain was not probed (a plan for printing only)

    def environment(self) -> dict[str, str]:
        return dict(self.env)

    def key(self, dep_outputs: Mapping[NodeId, Mapping[str, str]]) -> str:
        """The action key: the static components and each dependency's output digests."""
        deps = sorted({d.node for d in self.deps} | set(dep_outputs))
        return final_key(self.components, {str(d): dict(dep_outputs[d]) for d in deps})

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": self.kind,
            "argv": [list(c) for c in self.commands] if self.known else None,
            "env": redact_env(dict(self.env)),
            "workdir": self.workdir,
            "input_root": {
                "files": [f.as_json() for f in self.inputs]
                + [{"path": p, "digest": hash_bytes(t.encode()), "mode": "0755"}
                   for p, t in self.files],
                "deps": [{"node": str(d.node), "dir": d.dir} for d in self.deps],
            },
            "outputs": list(self.outputs),
            "platform": self.requirements.as_json(),
            "timeout": self.timeout,
            "tools": list(self.tools),
            "network": self.network,
        }
        if self.backend is not None:
            d["backend"] = self.backend
        return d


def isa(platform: Platform) -> str:
    """REAPI's ISA property for a platform (x86-64, aarch64, armv7l...)."""
    return reapi_isa(platform)


def step_env(
    facts: Facts, target: Platform | None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a step: pass-through and allowlisted host vars, buildx-style
    TARGET*/BUILD* args, SOURCE_DATE_EPOCH, HOME and TMPDIR inside the work dir, then the
    step's own (``extra``)."""
    env = {k: facts.host_env[k] for k in PASS_THROUGH if k in facts.host_env}
    env.update(facts.env)
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["LC_ALL"] = "C"
    env["TZ"] = "UTC"
    env["HOME"] = WORK_HOME
    env["TMPDIR"] = WORK_TMP
    # go's own $WORK outside the module: under it, -trimpath rewrote the module dir first and
    # cgo binaries kept a random .tmp/go-buildNNN path (no two builds byte-identical).
    env["GOTMPDIR"] = "/tmp"
    env["SOURCE_DATE_EPOCH"] = str(facts.source_date_epoch)
    env.update(facts.build_platform.build_args("BUILD"))
    if target is not None:
        env.update(target.build_args("TARGET"))
    if extra:
        env.update(extra)
    return env


def _merge_env(toolchain: Mapping[str, str], step: Mapping[str, str]) -> dict[str, str]:
    env = {**toolchain, **step}
    for var in APPENDED & set(step) & set(toolchain):
        env[var] = f"{toolchain[var]} {step[var]}".strip()
    return env


def _inputs(tree: TreeDigest | None) -> tuple[InputFile, ...]:
    if tree is None:
        return ()
    root = str(tree.root)
    if tree.single:
        return tuple(InputFile(f.path, f.digest, f.executable, f.link, root) for f in tree.files)
    # the digest's paths are clean relative posix paths: a string join (not a Path per file)
    return tuple(InputFile(f.path, f.digest, f.executable, f.link, posixpath.join(root, f.path))
                 for f in tree.files)


def lower(
    node: NodeId, step: Step, platform: Platform | None, facts: Facts,
    components: Mapping[str, Any], deps: tuple[DepInput, ...],
) -> Action:
    """The Action of one planned node (pure: everything comes from the step and the facts)."""
    # Cross-compiles run on the build machine; steps that run target binaries
    # (``emulate = true``) on the target's ISA: a native worker on a real cluster.
    runs_on = platform if step.emulate and platform is not None else facts.build_platform
    req = Requirements(isa(runs_on))
    inputs = _inputs(facts.trees.get(node.step))
    common: dict[str, Any] = {"node": node, "inputs": inputs, "deps": deps,
                              "requirements": req, "components": components,
                              "network": step.network}
    if isinstance(step, ImageStep):
        return Action(kind="image", commands=(), env=(), outputs=("oci",),
                      backend=facts.backends.get(node.step, "oci"), **common)
    if isinstance(step, ShellStep):
        env = step_env(facts, platform, step.env)
        return Action(kind="command", commands=(tuple(step.command),),
                      env=tuple(sorted(env.items())), outputs=tuple(step.outputs), **common)
    cmd: ToolCommand | None = facts.commands.get(node)
    if cmd is None:  # toolchains not probed, or a compile step without a platform
        env = step_env(facts, platform, step.env)
        return Action(kind="command", commands=(), env=tuple(sorted(env.items())),
                      outputs=tuple(step.outputs), known=False, **common)
    extra = _merge_env(cmd.env, step.env) if step.env else dict(cmd.env)
    env = step_env(facts, platform, extra)
    return Action(
        kind="command", commands=cmd.commands, env=tuple(sorted(env.items())),
        outputs=cmd.outputs, executables=cmd.executables,
        files=tuple(sorted(cmd.files.items())), toolchain=cmd.toolchain, tools=cmd.roots,
        **common,
    )
