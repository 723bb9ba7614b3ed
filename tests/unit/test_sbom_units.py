"""SBOM building blocks as tables: Go module info, dpkg/apk databases, Cargo.lock, and the
SPDX / CycloneDX documents of synthetic facts (valid, deterministic, no host paths)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossplan.attest.contents import (
    FileFact,
    ImageFacts,
    PackageFact,
    SourceFact,
    base_packages,
    cargo_packages,
)
from crossplan.attest.gobuild import parse_modinfo, read_go_buildinfo_bytes
from crossplan.platforms import Platform

MODINFO = (
    "path\texample.com/app\n"
    "mod\texample.com/app\t(devel)\t\n"
    "dep\tgolang.org/x/text\tv0.14.0\th1:abc=\n"
    "dep\texample.com/greet\tv0.1.0\n"
    "=>\t./greet\t(devel)\t\n"
    "build\tGOARCH=arm64\n"
)


def test_modinfo_lists_main_deps_replacements_and_settings() -> None:
    path, main, deps, settings = parse_modinfo(MODINFO)
    assert path == "example.com/app"
    assert main is not None and (main.path, main.version) == ("example.com/app", "(devel)")
    assert [(d.path, d.version, d.sum, d.replaced_by) for d in deps] == [
        ("golang.org/x/text", "v0.14.0", "h1:abc=", ""),
        ("example.com/greet", "v0.1.0", "", "./greet (devel)"),
    ]
    assert settings == (("GOARCH", "arm64"),)


@pytest.mark.parametrize("data", [b"", b"#!/bin/sh\n", b"\x7fELF" + b"\0" * 60])
def test_non_go_files_have_no_buildinfo(data: bytes) -> None:
    assert read_go_buildinfo_bytes(data) is None


def test_buildinfo_found_by_magic_without_sections() -> None:
    mod = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6" + MODINFO.encode() + \
        b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2"
    header = b"\xff Go buildinf:" + bytes([8, 2]) + b"\0" * 16
    blob = header + bytes([8]) + b"go1.27.3" + bytes([len(mod) & 0x7F | 0x80, len(mod) >> 7]) + mod
    elf = b"\x7fELF" + b"\0" * 12 + b"junk" + blob  # not parseable as ELF: the magic is found
    info = read_go_buildinfo_bytes(elf)
    assert info is not None
    assert info.go_version == "go1.27.3"
    assert [d.path for d in info.deps] == ["golang.org/x/text", "example.com/greet"]


DPKG = b"""Package: libc6
Status: install ok installed
Architecture: arm64
Version: 2.36-9

Package: removed-one
Status: deinstall ok config-files
Version: 1.0

Package: busybox
Status: install ok installed
Architecture: arm64
Version: 1:1.35.0-4
Description: tiny
 continuation: not a field
"""
APK = b"P:musl\nV:1.2.4-r2\nA:aarch64\n\nP:busybox\nV:1.36.1-r5\nA:aarch64\n"


def test_base_packages_from_dpkg_and_apk_databases() -> None:
    deb = base_packages({"var/lib/dpkg/status": DPKG})
    assert [(p.name, p.version, p.purl) for p in deb] == [
        ("libc6", "2.36-9", "pkg:deb/debian/libc6@2.36-9?arch=arm64"),
        ("busybox", "1:1.35.0-4", "pkg:deb/debian/busybox@1:1.35.0-4?arch=arm64"),
    ]
    apk = base_packages({"lib/apk/db/installed": APK})
    assert [(p.kind, p.name, p.version) for p in apk] == [
        ("apk", "musl", "1.2.4-r2"), ("apk", "busybox", "1.36.1-r5")]


def test_cargo_lock_entries(tmp_path: Path) -> None:
    lock = tmp_path / "Cargo.lock"
    lock.write_text('version = 3\n\n[[package]]\nname = "libc"\nversion = "0.2.150"\n'
                    'source = "registry+https://github.com/rust-lang/crates.io-index"\n'
                    f'checksum = "{"ab" * 32}"\n\n[[package]]\nname = "hello"\nversion = "0.1.0"\n')
    pkgs = cargo_packages(lock, "svc")
    assert [(p.name, p.version, p.purl, p.sha256) for p in pkgs] == [
        ("libc", "0.2.150", "pkg:cargo/libc@0.2.150", "ab" * 32),
        ("hello", "0.1.0", "pkg:cargo/hello@0.1.0", ""),
    ]
    assert cargo_packages(tmp_path / "missing.lock", "svc") == []


def _facts() -> ImageFacts:
    return ImageFacts(
        "image", Platform.parse("linux/arm64"), "sha256:" + "1" * 64, "sha256:" + "2" * 64,
        ("127.0.0.1:5000/base:1", "sha256:" + "3" * 64),
        (FileFact("usr/bin/app", "sha256:" + "4" * 64, "5" * 40, 10, "app"),
         FileFact("etc/os-release", "sha256:" + "6" * 64, "7" * 40, 3, None)),
        (PackageFact("golang", "example.com/greet", "v0.1.0", "pkg:golang/example.com/greet@v0.1.0",
                     "app", "usr/bin/app"),
         PackageFact("deb", "libc6", "2.36-9", "pkg:deb/debian/libc6@2.36-9?arch=arm64"),
         PackageFact("sysroot", "zlib1g-dev", "1:1.2.13", "pkg:deb/debian/zlib1g-dev@1:1.2.13",
                     "app", sha256="8" * 64),
         PackageFact("toolchain", "go", "go version go1.27.3", "pkg:generic/go-toolchain", "app")),
        (SourceFact("app", "go", "9" * 64, "go version go1.27.3", "app@linux/arm64", "k" * 64),),
        1700000000, "demo",
    )


def test_spdx_document_is_valid_deterministic_and_related() -> None:
    from spdx_tools.spdx.parser.json.json_parser import parse_from_file  # noqa: F401

    from crossplan.attest.spdx import spdx_json

    a, b = spdx_json(_facts(), "0.1.0"), spdx_json(_facts(), "0.1.0")
    assert a == b
    doc = json.loads(a)
    assert doc["spdxVersion"] == "SPDX-2.3"
    assert doc["creationInfo"]["created"] == "2023-11-14T22:13:20Z"
    names = {p["name"] for p in doc["packages"]}
    assert {"example.com/greet", "libc6", "zlib1g-dev", "go", "app sources"} <= names
    by_id = {p["SPDXID"]: p["name"] for p in doc["packages"]}
    by_id.update({f["SPDXID"]: f["fileName"] for f in doc["files"]})
    rels = {(by_id.get(r["spdxElementId"], r["spdxElementId"]), r["relationshipType"],
             by_id.get(r["relatedSpdxElement"], r["relatedSpdxElement"]))
            for r in doc["relationships"]}
    assert ("./usr/bin/app", "GENERATED_FROM", "app sources") in rels
    assert ("./usr/bin/app", "CONTAINS", "example.com/greet") in rels
    assert ("zlib1g-dev", "BUILD_DEPENDENCY_OF", "./usr/bin/app") in rels
    assert ("go", "BUILD_TOOL_OF", "./usr/bin/app") in rels
    assert ("image (linux/arm64)", "DESCENDANT_OF", "127.0.0.1:5000/base:1") in rels


def test_cyclonedx_document_is_valid_and_deterministic() -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    from crossplan.attest.cyclonedx import cyclonedx_json

    a, b = cyclonedx_json(_facts(), "0.1.0"), cyclonedx_json(_facts(), "0.1.0")
    assert a == b
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(a.decode()) is None
    doc = json.loads(a)
    assert doc["metadata"]["timestamp"].startswith("2023-11-14T22:13:20")
    assert {c["name"] for c in doc["components"]} >= {"/usr/bin/app", "libc6", "zlib1g-dev"}


def _tar(members: dict[str, bytes | None]) -> bytes:
    """A layer: ``None`` is a directory, bytes a file."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_image_files_leave_out_what_later_layers_deleted(tmp_path: Path) -> None:
    """The SBOM's file list is the final file system: a regular whiteout and an opaque one
    (which spares its own layer's files) remove base files from it."""
    import hashlib

    from crossplan.attest.contents import _walk

    layers = [_tar({"var/lib/dpkg/status": DPKG, "opt/app/old.txt": b"old",
                    "usr/share/doc/x/README": b"doc", "etc/keep": b"k"}),
              _tar({"opt/app/": None, "opt/app/new.txt": b"new", "opt/app/.wh..wh..opq": b"",
                    "usr/share/.wh.doc": b""})]
    digests = []
    for data in layers:
        hexd = hashlib.sha256(data).hexdigest()
        (tmp_path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (tmp_path / "blobs" / "sha256" / hexd).write_bytes(data)
        digests.append({"digest": f"sha256:{hexd}"})
    config = {"history": [{"created_by": "base"},
                          {"created_by": "COPY --from=app /out /opt/app",
                           "comment": "crossplan image"}]}
    files, dbs = _walk(tmp_path, {"layers": digests}, config, "image", frozenset({"app"}))
    assert {p: f.step for p, (f, _) in files.items()} == {
        "var/lib/dpkg/status": None, "etc/keep": None, "opt/app/new.txt": "app"}
    new = files["opt/app/new.txt"][0]
    assert (new.sha256, new.size) == ("sha256:" + hashlib.sha256(b"new").hexdigest(), 3)
    assert list(dbs) == ["var/lib/dpkg/status"]
