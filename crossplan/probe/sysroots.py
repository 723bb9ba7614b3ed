"""Resolve, fetch and verify a recipe's Debian sysroots: packages and their dependencies for a
target architecture through the machine's configured apt sources (a private apt state, no
other network), pinned in ``sysroots.lock`` next to plan.toml, extracted into the store."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import unquote

from crossplan.backends.toolchains.targets import debian_arch
from crossplan.cache.sysroots import (
    deb_path,
    is_materialized,
    materialize,
    sha256_file,
    sysroot_id,
)
from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.network import is_offline, refuse
from crossplan.planner.sysroot import LockedPackage, SysrootFact
from crossplan.platforms import Platform
from crossplan.recipes.models import Recipe

__all__ = ["LOCK_NAME", "SHARED_ENV", "SysrootProvider", "Unlocked", "apt_sources", "provider_for",
           "read_lock"]

LOCK_NAME = "sysroots.lock"
# A directory shared between stores for apt lists and downloaded .debs (speed only: every
# .deb is checked against the lock's sha256 before use).
SHARED_ENV = "CROSSPLAN_SYSROOT_CACHE"
_LISTS_TTL = 24 * 3600
# Always in a sysroot: the target libc's headers, crt files and linker scripts.
BASE_PACKAGES = ("libc6-dev",)
_SOURCES = (Path("/etc/apt/sources.list.d"), Path("/etc/apt/sources.list"))

SysrootProvider = Callable[[str, Platform], SysrootFact]
Say = Callable[[str], None]


def apt_sources(suite: str, sources: tuple[Path, ...] = _SOURCES) -> str:
    """deb822 stanzas for ``suite`` made from the machine's own sources (mirror, components,
    keyring): ``bookworm-security`` becomes ``<suite>-security`` and so on."""
    stanzas: list[dict[str, str]] = []
    for src in sources:
        files = sorted(src.glob("*.sources")) if src.is_dir() else [src] if src.is_file() else []
        for f in files:
            stanzas += _deb822(f.read_text()) if f.suffix == ".sources" else _one_line(f)
    out = []
    for s in stanzas:
        if "deb" not in s.get("Types", "deb").split():
            continue
        suites = {_rename(x, suite) for x in s.get("Suites", "").split()}
        if not suites:
            continue
        lines = ["Types: deb", f"URIs: {s['URIs']}", f"Suites: {' '.join(sorted(suites))}",
                 f"Components: {s.get('Components', 'main')}"]
        if "Signed-By" in s:
            lines.append(f"Signed-By: {s['Signed-By']}")
        out.append("\n".join(lines))
    if not out:
        raise EnvironmentProblem("no apt sources configured on this machine",
                                 hint="configure /etc/apt/sources.list.d/debian.sources")
    return "\n\n".join(dict.fromkeys(out)) + "\n"


def _rename(name: str, suite: str) -> str:
    _code, sep, rest = name.partition("-")
    return f"{suite}{sep}{rest}" if "/" not in name else name


def _deb822(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if cur:
                stanzas.append(cur)
            cur = {}
        elif not line.startswith(("#", " ")) and ":" in line:
            k, _, v = line.partition(":")
            cur[k.strip()] = v.strip()
    return stanzas


def _one_line(path: Path) -> list[dict[str, str]]:
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "deb" and not parts[1].startswith("["):
            out.append({"URIs": parts[1], "Suites": parts[2], "Components": " ".join(parts[3:])})
    return out


class _Apt:
    """A private apt state for (suite, arch): its own sources, lists, cache, empty status."""

    def __init__(self, root: Path, suite: str, arch: str) -> None:
        self.dir = root / f"{suite}-{arch}"
        for d in ("lists/partial", "cache/archives/partial"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        (self.dir / "apt.sources").write_text(apt_sources(suite))
        (self.dir / "status").touch()
        self.opts = [
            "-o", f"Dir::Etc::SourceList={self.dir / 'apt.sources'}",
            "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", "Dir::Etc::Preferences=/nonexistent",
            "-o", "Dir::Etc::PreferencesParts=/nonexistent",
            "-o", f"Dir::State::Lists={self.dir / 'lists'}",
            "-o", f"Dir::Cache={self.dir / 'cache'}",
            "-o", f"Dir::State::status={self.dir / 'status'}",
            "-o", f"APT::Architecture={arch}", "-o", f"APT::Architectures::={arch}",
            "-o", "APT::Install-Recommends=0", "-o", "APT::Sandbox::User=root",
            "-o", "Debug::NoLocking=1",
        ]

    def run(self, *args: str, cwd: Path | None = None) -> str:
        env = {**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
        done = subprocess.run(["apt-get", "-q", *self.opts, *args], capture_output=True,
                              text=True, cwd=cwd, check=False, env=env)
        if done.returncode != 0:
            raise EnvironmentProblem(
                f"apt-get {args[0]} failed: {(done.stderr or done.stdout).strip()[-600:]}",
                hint="check the package names and the machine's apt sources "
                "(/etc/apt/sources.list.d)",
            )
        return done.stdout

    def update(self, say: Say) -> None:
        stamp = self.dir / "updated"
        if stamp.is_file() and time.time() - stamp.stat().st_mtime < _LISTS_TTL:
            return
        say(f"apt-get update ({self.dir.name}) from the configured mirror")
        try:
            self.run("update")
        except EnvironmentProblem as exc:
            # A mirror caught mid-sync fails one index (often a security suite's armhf
            # list); apt keeps the others. Go on with them; the lock still pins exact
            # versions and sha256, and the next run updates again.
            if not any((self.dir / "lists").glob("*_Packages*")):
                raise
            say(f"warning: {exc.message.splitlines()[0][:200]}; using the lists apt got")
            return
        stamp.touch()

    def resolve(self, packages: tuple[str, ...]) -> list[tuple[str, str, str, int]]:
        """(name, version, arch, size) of the packages and their dependencies."""
        out = self.run("--print-uris", "-y", "install", *packages)
        found = []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0].startswith("'") and parts[1].endswith(".deb"):
                name, version, arch = unquote(parts[1])[: -len(".deb")].split("_")
                found.append((name, version, arch, int(parts[2])))
        return found

    def download(self, wanted: list[tuple[str, str]], dest: Path) -> dict[tuple[str, str], str]:
        """Download ``(name, version)`` .debs in one apt-get call (apt checks them against
        the signed index); each lands in ``dest`` by sha256. Returns (name, version) ->
        sha256."""
        if not wanted:
            return {}
        with tempfile.TemporaryDirectory(dir=dest) as tmp:
            self.run("download", *(f"{n}={v}" for n, v in wanted), cwd=Path(tmp))
            got: dict[tuple[str, str], str] = {}
            for deb in Path(tmp).glob("*.deb"):
                plain = unquote(deb.name)
                name, version, _arch = plain[: -len(".deb")].split("_")
                sha = sha256_file(deb)
                os.replace(deb, deb_path(dest, sha))
                _remember(dest, plain, sha)
                got[(name, version)] = sha
        missing = [f"{n}={v}" for n, v in wanted if (n, v) not in got]
        if missing:
            raise EnvironmentProblem(f"apt-get download gave no .deb for {', '.join(missing)}")
        return got


def read_lock(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {"lock_version": 1, "sysroots": {}}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RecipeError(f"{path} is not a valid lock file: {exc}",
                          hint=f"delete {path.name} to resolve the sysroots again") from None
    if not isinstance(data, dict) or not isinstance(data.get("sysroots"), dict):
        raise RecipeError(f"{path} is not a sysroots lock file",
                          hint=f"delete {path.name} to resolve the sysroots again")
    return data


def provider_for(
    recipe: Recipe, store_dir: Path, environ: Mapping[str, str], say: Say = lambda m: None,
    *, frozen: bool = False,
) -> SysrootProvider:
    """``provide(name, platform)``: the sysroot's locked packages for the platform's
    architecture, each verified by sha256 and extracted into the store (once per process).
    ``frozen`` (``--locked``): what sysroots.lock does not pin is an error, never resolved."""
    shared = Path(environ[SHARED_ENV]) if environ.get(SHARED_ENV) else store_dir / "sysroots"
    lock_file = recipe.root / LOCK_NAME
    memo: dict[tuple[str, str], SysrootFact] = {}

    def provide(name: str, platform: Platform) -> SysrootFact:
        arch = debian_arch(platform)
        if (name, arch) in memo:
            return memo[(name, arch)]
        cfg = recipe.sysroots.get(name)
        if cfg is None:
            raise RecipeError(f"no sysroot named '{name}'", file=recipe.label,
                              hint=f'declare it: [sysroots.{name}] packages = ["zlib1g-dev"]')
        apt = _Apt(shared / "apt", cfg.debian, arch)
        debs = shared / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        lock = read_lock(lock_file)
        roots: dict[str, dict[str, object]] = lock["sysroots"]  # type: ignore[assignment]
        entry = roots.get(name)
        fresh = (isinstance(entry, dict) and entry.get("debian") == cfg.debian
                 and entry.get("packages") == list(cfg.packages))
        arches: dict[str, list[dict[str, object]]] = (
            entry.get("arches", {}) if fresh and isinstance(entry, dict) else {})  # type: ignore[assignment]
        if arch in arches:
            locked = [LockedPackage(str(p["name"]), str(p["version"]), str(p["arch"]),
                                    str(p["sha256"]), str(p.get("filename", "")),
                                    int(p.get("size", 0))) for p in arches[arch]]  # type: ignore[call-overload]
            ident = sysroot_id((p.name, p.version, p.arch, p.sha256) for p in locked)
            if not is_materialized(shared / "roots", ident):  # extracted from verified .debs
                _fetch(apt, debs, locked, say, name)
        else:
            if frozen:
                raise _unlocked(lock_file, name, arch, stale=entry is not None and not fresh)
            if is_offline():
                refuse(f"sysroot '{name}' is not locked for {arch}: resolving it needs the "
                       "Debian mirror", file=str(lock_file))
            apt.update(say)
            say(f"resolving sysroot '{name}' for {arch}: {', '.join(cfg.packages)}")
            resolved = apt.resolve((*cfg.packages, *BASE_PACKAGES))
            shas = {(n, v): _known(debs, f"{n}_{v}_{a}.deb") for n, v, a, _s in resolved}
            shas.update(apt.download([k for k, sha in shas.items() if sha is None], debs))
            locked = [LockedPackage(n, v, a, str(shas[(n, v)]), f"{n}_{v}_{a}.deb", size)
                      for n, v, a, size in resolved]
            locked.sort(key=lambda p: (p.name, p.arch))
            arches = {**arches, arch: [p.as_json() for p in locked]}
            roots[name] = {"debian": cfg.debian, "packages": list(cfg.packages),
                           "arches": dict(sorted(arches.items()))}
            lock_file.write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")
            say(f"{LOCK_NAME}: sysroot '{name}' for {arch} locked ({len(locked)} packages)")
        ident = sysroot_id((p.name, p.version, p.arch, p.sha256) for p in locked)
        path = materialize(shared / "roots", ident, [deb_path(debs, p.sha256) for p in locked])
        fact = SysrootFact(name, cfg.debian, arch, tuple(locked), str(path))
        memo[(name, arch)] = fact
        return fact

    return provide


class Unlocked(RecipeError):
    """``--locked`` and the lock does not pin what the plan needs: the whole run stops
    (exit 2) at planning, it is not deferred to the nodes like a missing toolchain."""


def _unlocked(lock_file: Path, name: str, arch: str, *, stale: bool) -> Unlocked:
    why = (f"[sysroots.{name}] changed since it was locked" if stale
           else f"it pins no {arch} packages for sysroot '{name}'")
    return Unlocked(f"--locked: {lock_file.name} is out of date: {why}",
                       file=str(lock_file),
                       hint="run `plan lock` (or a run without --locked) and commit "
                            f"{lock_file.name}")


def _remember(debs: Path, filename: str, sha: str) -> None:
    """``debs/by-name/<name_version_arch.deb>`` -> its sha256 (apt verified it on download)."""
    (debs / "by-name").mkdir(exist_ok=True)
    (debs / "by-name" / filename).write_text(sha)


def _known(debs: Path, filename: str) -> str | None:
    """The sha256 of a .deb downloaded before, when the store still holds it intact."""
    try:
        sha = (debs / "by-name" / filename).read_text().strip()
    except OSError:
        return None
    ok = deb_path(debs, sha).is_file() and sha256_file(deb_path(debs, sha)) == sha
    return sha if ok else None


def _fetch(apt: _Apt, debs: Path, locked: list[LockedPackage], say: Say, name: str) -> None:
    """The locked .debs in the store, each verified by sha256 (downloaded when missing)."""
    missing = [p for p in locked if not (deb_path(debs, p.sha256).is_file()
                                         and sha256_file(deb_path(debs, p.sha256)) == p.sha256)]
    if not missing:
        return
    if is_offline():
        refuse(f"sysroot '{name}' needs {len(missing)} locked package(s) not in the store "
               f"({', '.join(p.name for p in missing[:5])}): fetching them needs the mirror")
    apt.update(say)
    say(f"fetching {len(missing)} locked package(s)")
    got = apt.download([(p.name, p.version) for p in missing], debs)
    for p in missing:
        if got[(p.name, p.version)] != p.sha256:
            raise EnvironmentProblem(
                f"{p.name} {p.version} ({p.arch}) from the mirror has sha256 "
                f"{got[(p.name, p.version)][:16]}..., but {LOCK_NAME} records {p.sha256[:16]}...",
                hint=f"a changed package under the same version: check the mirror, or delete "
                f"the sysroot's entry in {LOCK_NAME} to re-resolve it",
            )
