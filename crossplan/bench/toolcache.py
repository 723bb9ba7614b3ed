"""Warm host toolchain caches: the toolchain's own build products, without the project.

Cold caches make Go rebuild its std packages and zig its libc (musl, compiler_rt) in every
round: that is what a fresh CI runner pays, and ``--toolchain-cache cold`` measures it.
``warm`` builds those once per (toolchain, platform) into a pristine toolcache dir, which each
round copies into its fresh store before the clock starts: the project itself stays cold.
"""

from __future__ import annotations

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


def warm_commands(tc_name: str, action: BuildAction) -> list[tuple[str, ...]] | None:
    """The commands that pre-build ``action``'s toolchain parts (None: nothing to warm).
    Go: ``go build -trimpath std`` (the same flags as the step's build, which enter Go's
    action IDs); zig: one trivial C program with the step's CC/CFLAGS/LDFLAGS (builds libc)."""
    if tc_name == "go":
        go = action.commands[-1][0]
        return [(go, "build", "-trimpath", "std")]
    if "ZIG_GLOBAL_CACHE_DIR" in action.env and "CC" in action.env:
        return [*action.commands[:-1],
                ("sh", "-c", "$CC $CFLAGS $LDFLAGS -o warm warm.c")]
    return None


def warm_toolcache(
    tc: Toolchain, step: object, platform: Platform, dest: Path, *, build: Platform,
    environ: Mapping[str, str],
) -> bool:
    """Fill ``dest`` (a store's ``toolcache`` dir) with ``tc``'s warm caches for ``platform``;
    False when the toolchain has nothing to warm. The log is kept in ``dest``/../warm.log."""
    cache = dest / tc.name
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="crossplan-warm-") as tmp:
        work = Path(tmp)
        action = tc.action(step, platform, work, cache)
        commands = warm_commands(tc.name, action)
        if commands is None:
            return False
        for rel, text in action.files.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_text(text)
        (work / "warm.c").write_text(WARM_C)
        env = base_env(workdir=work, target=platform, build=build, source_date_epoch=0,
                       host_env=environ, extra={**action.env, "GOFLAGS": ""})
        log = dest.parent / "warm.log"
        code = run_commands(commands, cwd=work, env=env, log=log, step="warm-up")
        if code != 0:
            raise StepFailed(f"warming the {tc.name} toolchain cache for {platform} failed",
                             hint=f"see {log}")
    local = action.env.get("ZIG_LOCAL_CACHE_DIR")
    if local:
        shutil.rmtree(local, ignore_errors=True)
    return True
