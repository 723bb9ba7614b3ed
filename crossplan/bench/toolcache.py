"""Warm host toolchain caches: the toolchain's own build products, without the project.

Cold caches make Go rebuild its std packages and zig its libc (musl, compiler_rt) in every
round: that is what a fresh CI runner pays, and ``--toolchain-cache cold`` measures it.
``warm`` builds those once per (step, platform) into a pristine toolcache dir, which each
round copies into its fresh store before the clock starts: the project itself stays cold.
For Go that is the standard-library packages the step imports (``go list -deps``), not all
of ``std``: the same set a persistent GOCACHE holds after any earlier build of the project.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from crossplan.backends.host import base_env, run_commands
from crossplan.backends.toolchains.base import BuildAction, Toolchain
from crossplan.errors import StepFailed
from crossplan.platforms import Platform

__all__ = ["warm_commands", "warm_toolcache"]

WARM_C = "int main(void) { return 0; }\n"


GO_STD_DEPS = "{{if .Standard}}{{.ImportPath}}{{end}}"


def go_warm_line(go: str, package: str) -> str:
    """Shell: build the standard-library packages ``package`` imports (transitively), with
    ``-trimpath`` like crossplan's builds (the flag enters Go's action IDs)."""
    q = shlex.quote
    return (f"{q(go)} build -trimpath $({q(go)} list -deps -f {q(GO_STD_DEPS)} "
            f"{q(package)})")


def warm_commands(
    tc_name: str, action: BuildAction, package: str = "."
) -> list[tuple[str, ...]] | None:
    """The commands that pre-build ``action``'s toolchain parts (None: nothing to warm).
    Go: the std packages the step's ``package`` needs (what a previous build of any version
    of the project leaves in GOCACHE); zig: one trivial C program with the step's
    CC/CFLAGS/LDFLAGS (builds libc and compiler_rt)."""
    if tc_name == "go":
        return [("sh", "-c", go_warm_line(action.commands[-1][0], package))]
    if "ZIG_GLOBAL_CACHE_DIR" in action.env and "CC" in action.env:
        return [*action.commands[:-1],
                ("sh", "-c", "$CC $CFLAGS $LDFLAGS -o warm warm.c")]
    return None


def warm_toolcache(
    tc: Toolchain, step: object, platform: Platform, dest: Path, *, build: Platform,
    environ: Mapping[str, str], src: Path | None = None,
) -> bool:
    """Fill ``dest`` (a store's ``toolcache`` dir) with ``tc``'s warm caches for ``platform``;
    False when the toolchain has nothing to warm. ``src``: the step's input tree (Go lists
    its imports there, in a copy). The log is kept in ``dest``/../warm.log."""
    cache = dest / tc.name
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="crossplan-warm-") as tmp:
        work = Path(tmp) / "work"
        if src is not None:  # Go lists its imports there; Rust reads Cargo.toml for the bin
            shutil.copytree(src, work, symlinks=True)
        work.mkdir(exist_ok=True)
        action = tc.action(step, platform, work, cache)
        commands = warm_commands(tc.name, action, getattr(step, "package", "."))
        if commands is None:
            return False
        for rel, text in action.files.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_text(text)
        (work / "warm.c").write_text(WARM_C)
        env = base_env(workdir=work, target=platform, build=build, source_date_epoch=0,
                       host_env=environ, extra=action.env)
        log = dest.parent / "warm.log"
        code = run_commands(commands, cwd=work, env=env, log=log, step="warm-up")
        if code != 0:
            raise StepFailed(f"warming the {tc.name} toolchain cache for {platform} failed",
                             hint=f"see {log}")
    local = action.env.get("ZIG_LOCAL_CACHE_DIR")
    if local:
        shutil.rmtree(local, ignore_errors=True)
    return True
