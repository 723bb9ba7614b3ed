"""Which target platforms this machine can execute, natively or through QEMU binfmt_misc."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from crossplan.backends.toolchains.targets import qemu_arch
from crossplan.errors import RecipeError
from crossplan.platforms import Platform

__all__ = ["BINFMT_DIR", "BinfmtEntry", "binfmt_fix", "can_execute", "natively_runs", "read_binfmt"]

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


@dataclass(frozen=True)
class BinfmtEntry:
    """One ``/proc/sys/fs/binfmt_misc/qemu-*`` registration."""

    name: str
    enabled: bool
    interpreter: str
    flags: str

    @property
    def fix_binary(self) -> bool:
        """The F flag: the interpreter is opened at registration, so it works in containers."""
        return "F" in self.flags


def read_binfmt(root: Path = BINFMT_DIR) -> dict[str, BinfmtEntry]:
    """``qemu-aarch64`` -> entry, for every qemu registration (empty if binfmt_misc is absent)."""
    out: dict[str, BinfmtEntry] = {}
    try:
        paths = sorted(root.glob("qemu-*"))
    except OSError:
        return out
    for path in paths:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        fields = dict(line.split(" ", 1) for line in lines[1:] if " " in line)
        out[path.name] = BinfmtEntry(
            path.name, bool(lines) and lines[0].strip() == "enabled",
            fields.get("interpreter", ""), fields.get("flags:", "").strip(),
        )
    return out


def natively_runs(build: Platform, target: Platform) -> bool:
    """The build machine's CPU runs ``target`` binaries without emulation."""
    if build.os != target.os:
        return False
    if build.arch == target.arch:
        return True
    return (build.arch, target.arch) == ("amd64", "386")


def entry_name(platform: Platform) -> str:
    try:
        return f"qemu-{qemu_arch(platform)}"
    except RecipeError:
        return f"qemu-{platform.arch}"


def can_execute(
    platform: Platform, build: Platform, entries: dict[str, BinfmtEntry],
    builder_platforms: Iterable[Platform] = (),
) -> bool:
    """Natively, through an enabled binfmt entry, or because the builder says it can."""
    if natively_runs(build, platform):
        return True
    entry = entries.get(entry_name(platform))
    if entry is not None and entry.enabled:
        return True
    return platform in set(builder_platforms)


def binfmt_fix(platforms: Iterable[Platform]) -> str:
    """The commands that register QEMU for ``platforms`` on this machine."""
    names = sorted({entry_name(p) for p in platforms})
    arches = ",".join(sorted({n.removeprefix("qemu-") for n in names}))
    return (
        "register QEMU user emulation: `apt-get install qemu-user-static binfmt-support && "
        + " && ".join(f"update-binfmts --enable {n}" for n in names)
        + f"` (or `docker run --privileged --rm tonistiigi/binfmt --install {arches}`); "
        "check with `ls /proc/sys/fs/binfmt_misc/`"
    )
