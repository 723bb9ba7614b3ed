"""The bubblewrap sandbox of a local step: its staged input root read-write at /crossplan/work,
its toolchains and the system's /usr and /lib read-only, a minimal /etc made for it, a
private /tmp (a link to the work dir's .tmp, else a tmpfs), no network (its own network
namespace) unless the step says ``network = true``, and nothing else of the host; it dies
with ``plan`` (``--die-with-parent``, own pid namespace)."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from crossplan.planner.facts import STEP_ETC, TOOLCACHE, WORK_TMP, WORKDIR

__all__ = ["Sandbox"]

# Host paths a compiler needs, read-only (missing ones are skipped; symlinks kept as links).
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Host files of /etc that the dynamic loader and Debian's alternatives need.
_ETC_FROM_HOST = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives")


class Sandbox:
    """Wraps a step's argv in ``bwrap``; ``etc`` is where the made /etc files live."""

    def __init__(self, bwrap: str, etc: Path) -> None:
        self.bwrap = bwrap
        self.etc = etc

    def prepare(self) -> None:
        self.etc.mkdir(parents=True, exist_ok=True)
        for name, text in STEP_ETC.items():
            f = self.etc / name
            if not f.is_file() or f.read_text() != text:
                tmp = self.etc / f".{name}.{os.getpid()}"
                tmp.write_text(text)
                os.replace(tmp, f)

    def wrap(
        self, argv: tuple[str, ...] | list[str], *, workdir: Path, toolcache: Path,
        cwd: str = ".", tools: tuple[str, ...] = (), network: bool = False,
    ) -> list[str]:
        out = [self.bwrap, "--unshare-all", "--die-with-parent", "--new-session"]
        if network:
            out.append("--share-net")
        for p in _SYSTEM:
            if os.path.islink(p):
                out += ["--symlink", os.readlink(p), p]
            elif os.path.isdir(p):
                out += ["--ro-bind", p, p]
        out += ["--dir", "/etc"]
        for name in STEP_ETC:
            out += ["--ro-bind", str(self.etc / name), f"/etc/{name}"]
        if network and os.path.exists("/etc/resolv.conf"):
            out += ["--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"]
        for p in _ETC_FROM_HOST:
            if os.path.exists(p):
                out += ["--ro-bind", p, p]
        bound = [t for t in tools if os.path.exists(t) and not t.startswith(_SYSTEM)]
        # /tmp: the work dir's .tmp (one mount with the work dir: a file made in /tmp is
        # renamed into it, not copied), or a tmpfs when a tool lives under /tmp (a store
        # there: its mount point could not be made through the link)
        under_tmp = any(f"{posixpath.normpath(t)}/".startswith("/tmp/") for t in bound)
        out += ["--proc", "/proc", "--dev", "/dev"]
        out += ["--tmpfs", "/tmp"] if under_tmp else ["--symlink", WORK_TMP, "/tmp"]
        for t in bound:
            out += ["--ro-bind", t, t]
        out += ["--bind", str(workdir), WORKDIR, "--bind", str(toolcache), TOOLCACHE]
        out += ["--chdir", posixpath.normpath(f"{WORKDIR}/{cwd}"), "--", *argv]
        return out
