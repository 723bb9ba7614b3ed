"""Generated Dockerfiles (pure): copy-only, BUILDPLATFORM compile stages, naive (emulated).

Three shapes, one renderer:

- ``compile = "host"``: the context holds the store's artifacts as
  ``out/<TARGETARCH><TARGETVARIANT>/<step>/...``; the Dockerfile is ``FROM <base>``, the
  TARGET args, one ``COPY`` per copy spec and the image metadata. Nothing executes.
- ``compile = "container"``: each go/rust/c step the image copies from gets a stage
  ``FROM --platform=$BUILDPLATFORM <toolchain_image> AS build-<step>`` that cross-compiles
  with the same env as the host toolchains (a ``case "$TARGETPLATFORM"`` per platform),
  with cache mounts; the final stage only copies.
- ``naive``: the same compile stages on the *target* platform (emulated under QEMU) — what
  ``plan bench`` compares against. :func:`lint` flags every such ``RUN``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

from crossplan.backends.dockerfile_lint import EMULATION_COST, LintFinding, lint
from crossplan.backends.toolchains.cc import arch_flags
from crossplan.backends.toolchains.go import go_env
from crossplan.backends.toolchains.rust import rust_triple
from crossplan.backends.toolchains.targets import gnu_triple, zig_target
from crossplan.errors import RecipeError
from crossplan.platforms import Platform
from crossplan.recipes.models import CopySpec, CStep, GoStep, ImageStep, RustStep, Step

__all__ = [
    "DOCKERFILE_SCHEMA",
    "EMULATION_COST",
    "CompileStage",
    "DockerfileSpec",
    "LintFinding",
    "compile_stage",
    "copy_source",
    "lint",
    "render",
]

# Bump when the generated text changes for the same inputs (it enters image keys).
DOCKERFILE_SCHEMA = 1
HOST_DIR = "out/${TARGETARCH}${TARGETVARIANT}"
COMPILE_KINDS = ("go", "rust", "c")
Variant = Literal["cross", "naive"]


@dataclass(frozen=True)
class CompileStage:
    """How one go/rust/c step compiles inside buildx: image, env, script, what it leaves."""

    step: str
    kind: str
    image: str
    platform_env: Mapping[Platform, Mapping[str, str]]  # exported per $TARGETPLATFORM
    env: Mapping[str, str]  # the stage's ENV (same for every platform)
    script: tuple[str, ...]  # shell commands run in /src/<step> after the cross env
    outputs: tuple[str, ...]  # paths relative to the work dir, copied to /out/<step>/
    caches: tuple[tuple[str, str], ...] = ()  # (cache id, mount target)
    emulate: bool = False
    deps: tuple[str, ...] = ()  # host steps whose outputs land in deps/<dep>/

    @property
    def name(self) -> str:
        return f"build-{self.step}"


@dataclass(frozen=True)
class DockerfileSpec:
    """Everything the text depends on. ``files``: each copied host step's output paths."""

    project: str
    image_step: str
    step: ImageStep
    platforms: tuple[Platform, ...]
    stages: tuple[CompileStage, ...] = ()
    files: Mapping[str, tuple[str, ...] | None] = field(default_factory=dict)

    @property
    def compile(self) -> str:
        return "container" if self.stages else "host"


# -- compile stages ---------------------------------------------------------------------


def compile_stage(
    sid: str,
    step: Step,
    platforms: Sequence[Platform],
    *,
    image: str,
    binary: str | None = None,
    vendor: bool = False,
    emulate: bool | None = None,
) -> CompileStage:
    """The stage compiling ``step`` (go/rust/c) for every platform. ``binary`` is the Go
    binary / Rust bin name when the step doesn't say (the caller reads go.mod/Cargo.toml)."""
    emu = step.emulate if emulate is None else emulate
    work = f"/src/{sid}"
    if isinstance(step, GoStep):
        return _go_stage(sid, step, platforms, image, binary, vendor, emu)
    if isinstance(step, CStep):
        return _c_stage(sid, step, platforms, image, work, emu)
    if isinstance(step, RustStep):
        return _rust_stage(sid, step, platforms, image, binary, emu)
    raise RecipeError(
        f"a {step.kind} step cannot compile in a container", step=sid,
        hint='only go, rust and c steps do; use compile = "host" for the others',
    )


def _go_stage(
    sid: str, step: GoStep, platforms: Sequence[Platform], image: str, binary: str | None,
    vendor: bool, emulate: bool,
) -> CompileStage:
    if step.cgo:
        raise RecipeError(
            "cgo = true is not supported with compile = \"container\"", step=sid,
            hint='use compile = "host" (zig cc links cgo for every arch) or drop cgo',
        )
    name = step.binary or binary or "app"
    cmd = ["go", "build", "-trimpath", "-buildvcs=false",
           "-ldflags", f"-buildid= {step.ldflags}".strip()]
    if step.tags:
        cmd += ["-tags", ",".join(step.tags)]
    cmd += ["-o", f"/out/{sid}/{name}", step.package]
    env = {
        "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOENV": "off", "GOTELEMETRY": "off",
        "GOFLAGS": "-mod=vendor" if vendor else "-mod=mod", "GOPROXY": "off", "GOSUMDB": "off",
        "GOCACHE": "/root/.cache/go-build", "GOMODCACHE": "/root/go/pkg/mod",
        "GOPATH": "/root/go",
    }
    return CompileStage(
        sid, "go", image, {p: go_env(p) for p in platforms}, env,
        (shlex.join(cmd),), (name,),
        (("crossplan-go-build", "/root/.cache/go-build"), ("crossplan-go-mod", "/root/go/pkg/mod")),
        emulate, step.deps,
    )


def _c_env(platform: Platform, compiler: str, libc: str) -> dict[str, str]:
    if compiler in ("auto", "zig"):
        target = " ".join(("-target", zig_target(platform, libc), *arch_flags(platform, "zig")))
        return {"CC": f"zig cc {target}", "CXX": f"zig c++ {target}", "AR": "zig ar",
                "RANLIB": "zig ranlib", "CROSSPLAN_GNU_TRIPLE": gnu_triple(platform)}
    triple = gnu_triple(platform)
    if compiler == "clang":
        flags = " ".join((f"--target={triple}", *arch_flags(platform, "clang")))
        return {"CC": f"clang {flags}", "CXX": f"clang++ {flags}", "AR": "llvm-ar",
                "RANLIB": "llvm-ranlib", "CROSSPLAN_GNU_TRIPLE": triple}
    flags = " ".join(arch_flags(platform, "gcc"))
    return {"CC": f"{triple}-gcc {flags}".strip(), "CXX": f"{triple}-g++ {flags}".strip(),
            "AR": f"{triple}-ar", "RANLIB": f"{triple}-ranlib", "CROSSPLAN_GNU_TRIPLE": triple}


def _c_stage(
    sid: str, step: CStep, platforms: Sequence[Platform], image: str, work: str, emulate: bool
) -> CompileStage:
    if not step.outputs:
        raise RecipeError(
            "a c step built in a container needs `outputs`", step=sid,
            hint='list what the build leaves, e.g. outputs = ["hello"]',
        )
    flags = f"-O2 -ffile-prefix-map={work}=."
    env = {
        "CFLAGS": flags, "CXXFLAGS": flags,
        "LDFLAGS": "-static" if step.libc == "musl" or step.link == "static" else "",
        "ARFLAGS": "rcsD",
        "ZERO_AR_DATE": "1", "ZIG_GLOBAL_CACHE_DIR": "/root/.cache/zig",
        "ZIG_LOCAL_CACHE_DIR": "/root/.cache/zig-local",
    }
    script = tuple(f"sh -c {shlex.quote(line)}" for line in step.build)
    return CompileStage(
        sid, "c", image, {p: _c_env(p, step.compiler, step.libc or "musl") for p in platforms}, env,
        (*script, *_collect(sid, step.outputs)), step.outputs,
        (("crossplan-zig", "/root/.cache/zig"),), emulate, step.deps,
    )


def _rust_stage(
    sid: str, step: RustStep, platforms: Sequence[Platform], image: str, binary: str | None,
    emulate: bool,
) -> CompileStage:
    name = step.bin or binary
    if not name:
        raise RecipeError("cannot tell the Rust binary name", step=sid, hint='set bin = "name"')
    per: dict[Platform, dict[str, str]] = {}
    for p in platforms:
        triple = rust_triple(p, step.libc or "gnu")
        upper = triple.upper().replace("-", "_")
        linker = f"{gnu_triple(p)}-gcc" if (step.libc or "gnu").startswith("gnu") else "cc"
        per[p] = {"RUST_TARGET": triple, f"CARGO_TARGET_{upper}_LINKER": linker}
    profile = {"dev": "debug", "test": "debug", "bench": "release"}.get(step.profile, step.profile)
    cmd = ["cargo", "build", "--target", "$RUST_TARGET", "--offline"]
    cmd += ["--release"] if step.profile == "release" else ["--profile", step.profile]
    if step.bin:
        cmd += ["--bin", step.bin]
    if step.features:
        cmd += ["--features", ",".join(step.features)]
    env = {"CARGO_HOME": "/root/.cargo", "CARGO_TARGET_DIR": f"/root/cargo-target/{sid}",
           "CARGO_INCREMENTAL": "0", "CARGO_TERM_COLOR": "never",
           "RUSTFLAGS": f"--remap-path-prefix=/src/{sid}=."}
    script = (
        " ".join(cmd).replace("$RUST_TARGET", '"$RUST_TARGET"'),
        f"mkdir -p /out/{sid}",
        f'cp "$CARGO_TARGET_DIR/$RUST_TARGET/{profile}/{name}" /out/{sid}/{name}',
    )
    return CompileStage(
        sid, "rust", image, per, env, script, (name,),
        (("crossplan-cargo-registry", "/root/.cargo/registry"),
         (f"crossplan-cargo-target-{sid}", "/root/cargo-target")),
        emulate, step.deps,
    )


def _collect(sid: str, outputs: Sequence[str]) -> list[str]:
    lines = []
    for out in outputs:
        rel = PurePosixPath(out)
        parent = PurePosixPath("/out", sid, rel).parent
        lines.append(f"mkdir -p {shlex.quote(str(parent))}")
        lines.append(f"cp -a {shlex.quote(str(rel))} {shlex.quote(str(parent))}/")
    return lines


# -- copies -------------------------------------------------------------------------------


def copy_source(spec: CopySpec, files: Sequence[str] | None) -> tuple[str, str]:
    """(path inside the step's output dir, destination) for one copy spec, matching the OCI
    backend: one selected file and a ``dest`` without ``/`` -> exactly ``dest``; otherwise
    a directory copy into ``dest/``. ``files`` are the dep's output paths when known."""
    src = PurePosixPath(spec.src).as_posix().strip("/") if spec.src else ""
    if src == ".":
        src = ""
    if files is None:
        return src, spec.dest
    selected = [f for f in files if not src or f == src or f.startswith(src + "/")]
    if not selected:
        raise RecipeError(
            f"copy from '{spec.from_}': no output '{spec.src}'",
            hint="outputs are: " + (", ".join(files) or "none"),
        )
    if len(selected) == 1 and not spec.dest.endswith("/"):
        return selected[0], spec.dest
    return src, spec.dest if spec.dest.endswith("/") else spec.dest + "/"


# -- rendering ----------------------------------------------------------------------------


def render(spec: DockerfileSpec, *, variant: Variant = "cross") -> str:
    """The Dockerfile text. ``variant="naive"`` puts every compile stage on the target."""
    plats = ",".join(str(p) for p in spec.platforms)
    lines = [
        f"# Generated by crossplan for project '{spec.project}', image step '{spec.image_step}'",
        f'# compile = "{spec.compile}"' + (" (naive: compiled under emulation)"
                                           if variant == "naive" and spec.stages else ""),
        f"# docker buildx build --platform {plats} -f Dockerfile .",
        "",
    ]
    by_step = {s.step: s for s in spec.stages}
    for compiled in spec.stages:
        lines += _render_stage(compiled, variant == "naive" or compiled.emulate)
        lines.append("")
    lines.append(f"FROM {spec.step.base}")
    host_copies = [c for c in spec.step.copy_ if c.from_ not in by_step]
    if host_copies:
        lines += ["ARG TARGETARCH", "ARG TARGETVARIANT"]
    for c in spec.step.copy_:
        stage = by_step.get(c.from_)
        files = stage.outputs if stage is not None else spec.files.get(c.from_)
        rel, dest = copy_source(c, files)
        chmod = f"--chmod={c.mode:04o} " if c.mode is not None else ""
        if stage:
            src = f"/out/{c.from_}/{rel}" if rel else f"/out/{c.from_}/"
            lines.append(f"COPY {chmod}--from={stage.name} {src} {dest}")
        else:
            src = f"{HOST_DIR}/{c.from_}/{rel}" if rel else f"{HOST_DIR}/{c.from_}/"
            lines.append(f"COPY {chmod}{src} {dest}")
    lines += _metadata(spec.step)
    return "\n".join(lines) + "\n"


def _render_stage(stage: CompileStage, on_target: bool) -> list[str]:
    plat = "" if on_target else "--platform=$BUILDPLATFORM "
    lines = [f"FROM {plat}{stage.image} AS {stage.name}", "ARG TARGETPLATFORM"]
    if stage.deps:
        lines += ["ARG TARGETARCH", "ARG TARGETVARIANT"]
    lines.append(f"WORKDIR /src/{stage.step}")
    for dep in stage.deps:
        lines.append(f"COPY {HOST_DIR}/{dep}/ deps/{dep}/")
    lines.append(f"COPY src/{stage.step}/ ./")
    if stage.env:
        pairs = [f"{k}={_env_value(v)}" for k, v in stage.env.items()]
        lines.append("ENV " + " \\\n    ".join(pairs))
    mounts = [f"--mount=type=cache,id={cid},target={target}" for cid, target in stage.caches]
    body = ["set -e", 'case "$TARGETPLATFORM" in']
    for p, env in stage.platform_env.items():
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        body.append(f"  {p}) export {exports} ;;")
    body.append(
        '  *) echo "crossplan: no cross env for $TARGETPLATFORM in this Dockerfile" >&2; exit 1 ;;'
    )
    body.append("esac")
    body += list(stage.script)
    first = "RUN " + (" \\\n    ".join(mounts) + " \\\n    " if mounts else "")
    text = first + _join_script(body)
    return [*lines, text]


def _join_script(body: list[str]) -> str:
    """Shell lines joined for a RUN: ``;`` after ``set -e``/``case`` pieces, line continuations."""
    out: list[str] = []
    for i, line in enumerate(body):
        last = i == len(body) - 1
        if line == 'case "$TARGETPLATFORM" in' or line.startswith("  "):
            sep = ""
        else:
            sep = "" if last else ";"
        out.append(line + sep + ("" if last else " \\"))
    return "\n    ".join(out)


def _env_value(value: str) -> str:
    """A Dockerfile ENV/LABEL value: double-quoted, with ``$`` escaped (no substitution)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def _metadata(step: ImageStep) -> list[str]:
    lines = []
    if step.env:
        lines.append("ENV " + " ".join(f"{k}={_env_value(v)}" for k, v in step.env.items()))
    if step.labels:
        lines.append(
            "LABEL " + " ".join(f"{_env_value(k)}={_env_value(v)}" for k, v in step.labels.items())
        )
    if step.workdir:
        lines.append(f"WORKDIR {step.workdir}")
    if step.user:
        lines.append(f"USER {step.user}")
    if step.expose:
        lines.append("EXPOSE " + " ".join(step.expose))
    if step.entrypoint is not None:
        lines.append("ENTRYPOINT " + json.dumps(list(step.entrypoint)))
    if step.cmd is not None:
        lines.append("CMD " + json.dumps(list(step.cmd)))
    return lines
