"""What one platform image is made of, from the build's own facts: its files by digest
(read from the stored layout's layers), the Go modules in its binaries, the Cargo.lock
entries and sysroot packages of the steps it copies from, the base image's dpkg/apk
packages, and the toolchains and source trees that produced it. Pure data for the SBOM
and provenance writers; nothing here depends on the host (no paths, no clock)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from crossplan.attest.gobuild import read_go_buildinfo_bytes
from crossplan.backends.oci.layer_stack import Entry, apply_layers
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import Plan
from crossplan.platforms import Platform
from crossplan.recipes.models import RustStep

__all__ = ["FileFact", "ImageFacts", "PackageFact", "SourceFact", "collect", "layout_blob"]

_FROM = re.compile(r"--from=([\w.:-]+)")
_DPKG = "var/lib/dpkg/status"
_APK = "lib/apk/db/installed"


@dataclass(frozen=True)
class FileFact:
    path: str  # inside the image, no leading '/'
    sha256: str
    sha1: str
    size: int
    step: str | None  # the step whose layer put it there; None: the base


@dataclass(frozen=True)
class PackageFact:
    kind: str  # golang | cargo | deb | apk | toolchain | sysroot
    name: str
    version: str
    purl: str
    step: str | None = None  # the step it went in through; None: the base image
    binary: str | None = None  # the file it is compiled into (Go modules)
    sha256: str = ""
    comment: str = ""


@dataclass(frozen=True)
class SourceFact:
    """A step that produced files of the image: its input tree and toolchain."""

    step: str
    kind: str
    tree: str | None  # blake3 tree digest of its inputs
    toolchain: str | None  # the toolchain identity (first line)
    node: str  # "step@platform"
    key: str | None  # its action key in this run


@dataclass(frozen=True)
class ImageFacts:
    step: str
    platform: Platform
    manifest: str  # digest of the platform manifest (the subject)
    config: str
    base: tuple[str, str] | None  # (name, manifest digest) of the base for this platform
    files: tuple[FileFact, ...]
    packages: tuple[PackageFact, ...]
    sources: tuple[SourceFact, ...]
    created: int  # SOURCE_DATE_EPOCH
    project: str
    extra: Mapping[str, Any] = field(default_factory=dict)


def layout_blob(layout: Path, digest: str) -> Path:
    algo, _, hexpart = digest.partition(":")
    return layout / "blobs" / algo / hexpart


def _layers(layout: Path, manifest: Mapping[str, Any], config: Mapping[str, Any],
            image_step: str, sources: frozenset[str]) -> list[tuple[str | None, Path]]:
    """(step or None for the base, blob file) per layer, in order. A layer is ours when its
    history says ``crossplan <image step>`` and names one of the steps it copies from."""
    history = [h for h in config.get("history") or [] if not h.get("empty_layer")]
    out: list[tuple[str | None, Path]] = []
    for i, desc in enumerate(manifest.get("layers") or []):
        created_by = str(history[i].get("created_by", "")) if i < len(history) else ""
        comment = str(history[i].get("comment", "")) if i < len(history) else ""
        m = _FROM.search(created_by)
        ours = m is not None and comment == f"crossplan {image_step}" and m.group(1) in sources
        out.append((m.group(1) if m is not None and ours else None,
                    layout_blob(layout, str(desc["digest"]))))
    return out


@dataclass(frozen=True)
class _Read:
    """What one regular file's bytes say (shared by its hard links)."""

    path: str  # the path it was read at
    sha256: str
    sha1: str
    size: int
    mods: tuple[PackageFact, ...]  # Go modules compiled into it (binary = ``path``)
    db: bytes | None  # the bytes of a package database


def _walk(layout: Path, manifest: Mapping[str, Any], config: Mapping[str, Any],
          image_step: str, sources: frozenset[str]
          ) -> tuple[dict[str, tuple[FileFact, list[PackageFact]]], dict[str, bytes]]:
    """The final file system (the layers applied, whiteouts and opaque directories
    honoured): path -> (fact, Go modules compiled into it); and the package databases.
    Files are read one at a time, as each layer streams past."""
    layers = _layers(layout, manifest, config, image_step, sources)

    def read(entry: Entry, stream: IO[bytes]) -> _Read:
        head = stream.read(4)
        if head == b"\x7fELF" or entry.path in (_DPKG, _APK):  # parsed: read whole
            data = head + stream.read()
            step = layers[entry.layer][0]
            mods = go_packages(entry.path, data, step) if head == b"\x7fELF" else []
            return _Read(entry.path, "sha256:" + hashlib.sha256(data).hexdigest(),
                         hashlib.sha1(data, usedforsecurity=False).hexdigest(), len(data),
                         tuple(mods), data if entry.path in (_DPKG, _APK) else None)
        sha256, sha1 = hashlib.sha256(head), hashlib.sha1(head, usedforsecurity=False)
        size = len(head)
        while chunk := stream.read(1 << 20):  # any other file: hashed as it streams past
            sha256.update(chunk)
            sha1.update(chunk)
            size += len(chunk)
        return _Read(entry.path, "sha256:" + sha256.hexdigest(), sha1.hexdigest(), size, (),
                     None)

    stack = apply_layers((blob for _, blob in layers), read)
    files: dict[str, tuple[FileFact, list[PackageFact]]] = {}
    dbs: dict[str, bytes] = {}
    for path, got in stack.read.items():
        step = layers[stack.entries[path].layer][0]
        mods = [m if got.path == path else dataclasses.replace(m, binary=path)
                for m in got.mods]  # a hard link: its target's modules, under its name
        files[path] = (FileFact(path, got.sha256, got.sha1, got.size, step), mods)
        if got.db is not None and path in (_DPKG, _APK):
            dbs[path] = got.db
    return files, dbs


def _stanzas(text: str) -> Iterator[dict[str, str]]:
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line[:1] not in (" ", "\t") and ":" in line:
                k, _, v = line.partition(":")
                fields[k.strip()] = v.strip()
        if fields:
            yield fields


def base_packages(dbs: Mapping[str, bytes], distro: str = "debian") -> list[PackageFact]:
    """dpkg's status file (installed packages only) and apk's installed database."""
    out: list[PackageFact] = []
    if _DPKG in dbs:
        for s in _stanzas(dbs[_DPKG].decode(errors="replace")):
            if "Package" in s and s.get("Status", "install ok installed").endswith(" installed"):
                arch = s.get("Architecture", "")
                out.append(PackageFact("deb", s["Package"], s.get("Version", ""),
                                       f"pkg:deb/{distro}/{s['Package']}@{s.get('Version', '')}"
                                       f"?arch={arch}"))
    if _APK in dbs:
        apk: dict[str, str] = {}
        for line in [*dbs[_APK].decode(errors="replace").splitlines(), ""]:
            if not line.strip():
                if "P" in apk:
                    out.append(PackageFact("apk", apk["P"], apk.get("V", ""),
                                           f"pkg:apk/alpine/{apk['P']}@{apk.get('V', '')}"
                                           f"?arch={apk.get('A', '')}"))
                apk = {}
            elif len(line) > 2 and line[1] == ":":
                apk[line[0]] = line[2:]
    return out


def go_packages(path: str, data: bytes, step: str | None) -> list[PackageFact]:
    info = read_go_buildinfo_bytes(data)
    if info is None:
        return []
    mods = [m for m in (info.main, *info.deps) if m is not None]
    out = [PackageFact("golang", m.path, m.version, f"pkg:golang/{m.path}@{m.version}", step,
                       path, comment=(f"replaced by {m.replaced_by}" if m.replaced_by else "")
                       + (f" sum {m.sum}" if m.sum else ""))
           for m in mods]
    out.append(PackageFact("toolchain", "go", info.go_version, f"pkg:golang/std@{info.go_version}",
                           step, path, comment="the Go standard library linked in"))
    return out


def cargo_packages(lock: Path, step: str) -> list[PackageFact]:
    """Every ``[[package]]`` of a Cargo.lock (registry crates carry their checksum)."""
    try:
        doc = tomllib.loads(lock.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return []
    out = []
    for p in doc.get("package") or []:
        name, version = str(p.get("name", "")), str(p.get("version", ""))
        out.append(PackageFact("cargo", name, version, f"pkg:cargo/{name}@{version}", step,
                               sha256=str(p.get("checksum", ""))))
    return out


def collect(
    plan: Plan, step: str, platform: Platform, layout: Path, manifest_digest: str,
    keys: Mapping[NodeId, str],
) -> ImageFacts:
    """The facts of image step ``step`` for ``platform`` from its stored OCI ``layout``;
    ``keys`` are the run's action keys; the sysroot packages (as locked) of each compile
    node come from the plan's facts."""
    manifest = json.loads(layout_blob(layout, manifest_digest).read_bytes())
    config_digest = str(manifest["config"]["digest"])
    config = json.loads(layout_blob(layout, config_digest).read_bytes())
    image_node = NodeId(step, "any")
    pn = plan.nodes[image_node]
    sysroots = plan.facts.sysroots if plan.facts is not None else {}
    files, dbs = _walk(layout, manifest, config, step, frozenset(d.step for d in pn.deps))
    packages = base_packages(dbs)
    for _, (_, mods) in sorted(files.items()):
        packages += mods
    sources: list[SourceFact] = []
    for dep in pn.deps:
        dn = plan.nodes[dep]
        if dn.platform not in (None, platform):
            continue
        ident = dn.components.get("toolchain")
        first = str(ident).splitlines()[0] if ident else None
        sources.append(SourceFact(dep.step, dn.step.kind, dn.inputs.digest if dn.inputs else None,
                                  first, str(dep), keys.get(dep)))
        if isinstance(dn.step, RustStep) and dn.step.src is not None:
            packages += cargo_packages(plan.recipe.root / dn.step.src / "Cargo.lock", dep.step)
        sysroot = sysroots.get(dep)
        for pkg in sysroot.packages if sysroot is not None else ():
            packages.append(PackageFact(
                "sysroot", pkg.name, pkg.version,
                f"pkg:deb/debian/{pkg.name}@{pkg.version}?arch={pkg.arch}", dep.step,
                sha256=pkg.sha256, comment="sysroot package linked against"))
        if first:
            packages.append(PackageFact("toolchain", dn.step.kind, first,
                                        f"pkg:generic/{dn.step.kind}-toolchain", dep.step,
                                        comment="the toolchain that compiled it"))
    ann = manifest.get("annotations") or {}
    base_digest = ann.get("org.opencontainers.image.base.digest")
    base = (str(ann.get("org.opencontainers.image.base.name", "")), str(base_digest)) \
        if base_digest else None
    uniq = {(p.kind, p.name, p.version, p.step, p.binary): p for p in packages}
    return ImageFacts(
        step, platform, manifest_digest, config_digest, base,
        tuple(f for f, _ in sorted(files.values(), key=lambda x: x[0].path)),
        tuple(sorted(uniq.values(), key=lambda p: (p.kind, p.name, p.version, p.step or "",
                                                    p.binary or ""))),
        tuple(sorted(sources, key=lambda s: s.node)), plan.source_date_epoch,
        plan.recipe.project.name,
    )
