"""Rust: target triples, std detection across installed rustcs, a reproducible cargo build."""

from __future__ import annotations

import subprocess
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.platforms import Platform
from crossplan.recipes.models import RustStep

from ._proc import Runner, run
from .base import BuildAction
from .cc import CrossCC
from .rust_choice import Candidate, CrateNeeds, choose_rust, crate_needs, label, parse_version
from .targets import debian_arch

__all__ = ["RustCompiler", "RustToolchain", "missing_std", "rust_triple"]

_ARCH = {
    ("amd64", ""): "x86_64",
    ("arm64", ""): "aarch64",
    ("arm", "v7"): "armv7",
    ("arm", "v6"): "arm",
    ("386", ""): "i686",
    ("riscv64", ""): "riscv64gc",
    ("ppc64le", ""): "powerpc64le",
    ("s390x", ""): "s390x",
}


def rust_triple(platform: Platform, libc: str = "gnu") -> str:
    """``linux/arm/v7`` + gnu -> ``armv7-unknown-linux-gnueabihf``."""
    arch = _ARCH.get((platform.arch, platform.variant)) if platform.os == "linux" else None
    if arch is None:
        raise RecipeError(f"no Rust target triple for platform {platform}")
    abi = "musl" if libc == "musl" else "gnu"
    if platform.arch == "arm":
        abi += "eabihf"
    return f"{arch}-unknown-linux-{abi}"


def missing_std(platform: Platform, libc: str = "gnu") -> str:
    """The exact fix for a missing target std (Debian ships gnu std for its own arches only)."""
    triple = rust_triple(platform, libc)
    text = f"no Rust std for {triple}: `rustup target add {triple}`"
    if libc == "gnu" and platform.variant != "v6":
        text += f", or on Debian `apt install libstd-rust-dev:{debian_arch(platform)}`"
    return text


@dataclass(frozen=True)
class RustCompiler:
    """One installed rustc with its matching cargo: rustup's toolchain dir or Debian's /usr."""

    rustc: Path
    cargo: Path
    source: str


class RustToolchain:
    """Cargo cross builds; per target, the first rustc (in order) that has that target's std."""

    name = "rust"

    def __init__(
        self,
        compilers: Sequence[RustCompiler],
        *,
        linker: Callable[[Platform], CrossCC],
        libc: str = "gnu",
        runner: Runner = run,
    ) -> None:
        self.compilers = tuple(compilers)
        self.linker = linker
        self.libc = libc
        self.runner = runner
        self._probes: dict[tuple[str, ...], str | None] = {}
        self.needs: CrateNeeds | None = None  # the crate's, read by ``action``
        self.notes: list[str] = []  # which toolchain was chosen per target, and why

    def _probe(self, argv: tuple[str, ...]) -> str | None:
        if argv not in self._probes:
            try:
                self._probes[argv] = self.runner(argv, None)
            except (OSError, subprocess.SubprocessError):
                self._probes[argv] = None
        return self._probes[argv]

    def has_std(self, compiler: RustCompiler, triple: str) -> bool:
        """The target libdir holds ``libstd-*.rlib``: ``<sysroot>/lib/rustlib/<T>/lib`` when the
        sysroot has the usual layout, else ``rustc --print target-libdir --target T``."""
        rustlib = compiler.rustc.parent.parent / "lib" / "rustlib"
        if rustlib.is_dir():
            libdir: Path | None = rustlib / triple / "lib"
        else:
            argv = (str(compiler.rustc), "--print", "target-libdir", "--target", triple)
            out = self._probe(argv)
            libdir = Path(out.strip()) if out else None
        return libdir is not None and libdir.is_dir() and any(libdir.glob("libstd-*.rlib"))

    def select(self, platform: Platform, libc: str | None = None) -> RustCompiler:
        """The rustc for ``platform``: the first (in preference order) with the target's std
        that meets the crate's needs (``self.needs``: edition, rust-version, Cargo.lock
        version); the choice and its reason join ``notes``. EnvironmentProblem listing each
        candidate and what it lacks when none fits."""
        libc = libc or self.libc
        if not self.compilers:
            raise EnvironmentProblem(
                "no Rust toolchain found (rustc/cargo)",
                hint="install rustup, or on Debian `apt install rustc cargo`",
            )
        triple = rust_triple(platform, libc)
        needs = self.needs or CrateNeeds()
        candidates = []
        for c in self.compilers:
            rustc_v = self._probe((str(c.rustc), "-V"))
            cargo_v = self._probe((str(c.cargo), "-V"))
            candidates.append(Candidate(label(rustc_v, c.source, c.rustc),
                                        parse_version(rustc_v), parse_version(cargo_v),
                                        self.has_std(c, triple)))
        if not any(c.has_std for c in candidates):
            checked = ", ".join(f"{c.rustc} ({c.source})" for c in self.compilers)
            hint = f"checked {checked}"
            if libc == "gnu":
                arch = debian_arch(platform)
                hint += f"; Debian needs `dpkg --add-architecture {arch} && apt-get update` first"
            raise EnvironmentProblem(missing_std(platform, libc), hint=hint)
        index, why = choose_rust(candidates, needs, triple, (
            f"{missing_std(platform, libc)} on a toolchain new enough for the crate, or lower "
            "its needs (edition, rust-version; a Cargo.lock written by the older cargo)"))
        if len(self.compilers) > 1 and f"rust: {why}" not in self.notes:
            self.notes.append(f"rust: {why}")
        return self.compilers[index]

    def fingerprint(self, platform: Platform) -> str:
        compiler = self.select(platform)
        version = self._probe((str(compiler.rustc), "-vV"))
        cargo = self._probe((str(compiler.cargo), "-V"))
        if version is None or cargo is None:
            raise EnvironmentProblem(f"cannot run {compiler.rustc} -vV / {compiler.cargo} -V")
        lines = [version.strip(), cargo.strip(), f"target={rust_triple(platform, self.libc)}"]
        lines.append("linker " + self.linker(platform).identity(self.runner))
        return "\n".join(lines)

    def action(
        self, step: object, platform: Platform, workdir: Path, cache_dir: Path, *,
        source: Path | None = None,
    ) -> BuildAction:
        src = workdir if source is None else source
        if not isinstance(step, RustStep):
            raise TypeError(f"RustToolchain cannot build {type(step).__name__}")
        libc = step.libc or self.libc
        self.needs = crate_needs(src)
        triple = rust_triple(platform, libc)
        compiler = self.select(platform, libc)
        version = (self._probe((str(compiler.rustc), "-V")) or "rustc").split()
        slug = "-".join(version[:2]) if len(version) > 1 else "rustc"
        cargo_home = cache_dir / "rust" / "cargo-home"
        target_dir = cache_dir / "rust" / slug / "target"
        setup = self.linker(platform).setup(workdir, cache_dir)
        upper = triple.upper().replace("-", "_")
        lower = triple.replace("-", "_")
        remap = {workdir: ".", cargo_home: "/cargo", target_dir: "/target"}
        env = {k: v for k, v in setup.env.items() if k.startswith("ZIG_")}
        env.update(
            {
                "RUSTC": str(compiler.rustc),
                "CARGO_HOME": str(cargo_home),
                "CARGO_TARGET_DIR": str(target_dir),
                "CARGO_INCREMENTAL": "0",
                "CARGO_TERM_COLOR": "never",
                f"CARGO_TARGET_{upper}_LINKER": setup.cc_path,
                f"CC_{lower}": setup.env["CC"],
                f"CXX_{lower}": setup.env["CXX"],
                f"AR_{lower}": setup.env["AR"],
                "RUSTFLAGS": " ".join(f"--remap-path-prefix={k}={v}" for k, v in remap.items()),
            }
        )
        if step.link == "static":  # glibc or musl, no loader: runs on scratch
            env["RUSTFLAGS"] += " -C target-feature=+crt-static"
        binary = step.bin or _package_name(src)
        cmd = [str(compiler.cargo), "build", "--target", triple, "--offline"]
        cmd += ["--release"] if step.profile == "release" else ["--profile", step.profile]
        if (src / "Cargo.lock").is_file():
            cmd.append("--locked")
        if step.bin:
            cmd += ["--bin", step.bin]
        if step.features:
            cmd += ["--features", ",".join(step.features)]
        built = target_dir / triple / _profile_dir(step.profile) / binary
        return BuildAction(
            commands=(*setup.prepare, tuple(cmd), ("cp", "--", str(built), binary)),
            env=env,
            outputs=(binary,),
            executables=(binary,),
            files=setup.files,
        )


def _profile_dir(profile: str) -> str:
    return {"dev": "debug", "test": "debug", "bench": "release"}.get(profile, profile)


def _package_name(workdir: Path) -> str:
    manifest = workdir / "Cargo.toml"
    try:
        name = tomllib.loads(manifest.read_text())["package"]["name"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise RecipeError(
            f"cannot tell the binary name from {manifest}", hint='set bin = "name" in the step'
        ) from exc
    return str(name)
