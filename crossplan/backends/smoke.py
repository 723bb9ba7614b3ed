"""Run a built binary for its platform: natively, via binfmt_misc, or via ``qemu-<arch>-static``."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from crossplan.errors import EnvironmentProblem, StepFailed
from crossplan.platforms import Platform, build_platform

from .elf import read_elf
from .toolchains._proc import SAFE_PATH, which
from .toolchains.targets import debian_arch, gnu_triple, qemu_arch

__all__ = ["BINFMT_DIR", "binfmt_enabled", "emulator_argv", "run_binary"]

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


def binfmt_enabled(qarch: str, binfmt_dir: Path = BINFMT_DIR) -> bool:
    """True when ``binfmt_dir/qemu-<qarch>`` is registered and its first line says enabled."""
    try:
        return (binfmt_dir / f"qemu-{qarch}").read_text().startswith("enabled")
    except OSError:
        return False


def emulator_argv(
    binary: Path,
    platform: Platform,
    *,
    build: Platform | None = None,
    which: Callable[[str], Path | None] = which,
    binfmt_dir: Path = BINFMT_DIR,
    cross_root: Path = Path("/usr"),
    target_root: Path | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The argv prefix and env to run ``binary`` (built for ``platform``) on this machine.

    Native when platform is the build platform; else ``qemu-<arch>-static`` (with ``-L
    /usr/<triple>`` for glibc-dynamic binaries: the host's cross libc, or ``target_root``,
    the step's own sysroot, when it has one), else binfmt_misc; else EnvironmentProblem.
    """
    if platform == (build or build_platform()):
        interp = read_elf(binary).interpreter if target_root is not None else None
        loader = target_root / interp.lstrip("/") if target_root and interp else None
        if target_root is not None and loader is not None and loader.exists():
            triple = gnu_triple(platform)  # the sysroot's loader and libraries, not the host's
            libs = f"{target_root}/lib/{triple}:{target_root}/usr/lib/{triple}"
            return [str(loader), "--library-path", libs, str(binary)], {}
        return [str(binary)], {}
    qarch = qemu_arch(platform)
    sysroot: str | None = None
    if read_elf(binary).interpreter and target_root is not None:
        sysroot = str(target_root)
    elif read_elf(binary).interpreter:
        sysroot = str(cross_root / gnu_triple(platform))
        if not Path(sysroot, "lib").is_dir():
            raise EnvironmentProblem(
                f"{binary.name} is dynamically linked against glibc but {sysroot} is missing",
                hint=f"`apt install libc6-{debian_arch(platform)}-cross`, or link statically",
            )
    qemu = which(f"qemu-{qarch}-static") or which(f"qemu-{qarch}")
    if qemu is not None:
        return [str(qemu), *(["-L", sysroot] if sysroot else []), str(binary)], {}
    if binfmt_enabled(qarch, binfmt_dir):
        return [str(binary)], ({"QEMU_LD_PREFIX": sysroot} if sysroot else {})
    raise EnvironmentProblem(
        f"cannot run {platform} binaries here: no qemu-{qarch}-static and no enabled "
        f"binfmt_misc entry qemu-{qarch}",
        hint=f"`apt install qemu-user-static binfmt-support` then "
        f"`update-binfmts --enable qemu-{qarch}`",
    )


def run_binary(
    binary: Path,
    platform: Platform,
    args: Sequence[str] = (),
    *,
    build: Platform | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
    cwd: Path | None = None,
    target_root: Path | None = None,
) -> tuple[int, str]:
    """Run ``binary [args]`` for ``platform`` (its libraries from ``target_root``, a sysroot,
    when given); return (exit code, stdout+stderr)."""
    prefix, extra = emulator_argv(binary, platform, build=build, target_root=target_root)
    full_env = {"PATH": SAFE_PATH, "LC_ALL": "C", **(env or {}), **extra}
    try:
        done = subprocess.run(
            [*prefix, *args],
            env=full_env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise StepFailed(
            f"smoke test of {binary.name} ({platform}) timed out after {timeout}s"
        ) from exc
    except OSError as exc:
        raise StepFailed(f"cannot run {binary.name} for {platform}: {exc}") from exc
    return done.returncode, done.stdout.decode(errors="replace")
