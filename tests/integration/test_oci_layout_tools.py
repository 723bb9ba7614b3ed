"""Layouts and archives we write are read by real tools (skopeo, umoci); bases get prepended."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from testkit import require_component

from crossplan.backends.oci import (
    BaseImage,
    BuiltIndex,
    ImageSpec,
    LayerSpec,
    build_index,
    entries_from_tree,
    export,
    read_layout_base,
    sha256_digest,
    validate_index,
    write_archive,
    write_layout,
)
from crossplan.platforms import Platform

pytestmark = pytest.mark.integration

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")
PLATFORMS = (AMD64, ARM64)
EPOCH = 1_700_000_000


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    require_component(not missing, f"needs {', '.join(missing)}")


def _run(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(argv)} failed:\n{proc.stderr}"
    return proc.stdout


def _stage(root: Path, platform: Platform) -> Path:
    """What a cross-compile step would leave behind: a 'binary' and a config file."""
    stage = root / platform.slug
    (stage / "usr/local/bin").mkdir(parents=True)
    binary = stage / "usr/local/bin/hello"
    binary.write_text(f"#!/bin/sh\necho hello from {platform}\n")
    binary.chmod(0o775)  # modes are normalized: 0755 in the image
    (stage / "etc").mkdir()
    (stage / "etc/hello.conf").write_text("greeting=hi\n")
    (stage / "etc/hello.conf").chmod(0o664)
    return stage


def _build(root: Path, base: dict[Platform, BaseImage] | None = None) -> BuiltIndex:
    specs = {
        p: ImageSpec(
            base=(base or {}).get(p),
            layers=[LayerSpec(tuple(entries_from_tree(_stage(root, p))), "crossplan step 'app'")],
            entrypoint=["/usr/local/bin/hello"],
            env={"GREETING": "hi"},
            created=EPOCH,
        )
        for p in PLATFORMS
    }
    built = build_index(specs, revision="0123abc", source="https://example.com/hello")
    assert validate_index(built) == []
    return built


def _unpack(layout: Path, ref: str, bundle: Path) -> Path:
    rootless = ["--rootless"] if os.geteuid() != 0 else []
    _run("umoci", "unpack", *rootless, "--image", f"{layout}:{ref}", str(bundle))
    return bundle / "rootfs"


def test_skopeo_reads_layout_with_both_platforms(tmp_path: Path) -> None:
    _need("skopeo")
    built = _build(tmp_path / "src")
    layout = write_layout(built, tmp_path / "layout", ref_name="1.0")
    raw = _run("skopeo", "inspect", "--raw", f"oci:{layout}:1.0").encode()
    assert sha256_digest(raw) == built.digest
    index = json.loads(raw)
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]
    for platform in PLATFORMS:
        info = json.loads(
            _run(
                "skopeo",
                f"--override-arch={platform.arch}",
                "inspect",
                f"oci:{layout}:1.0",
            )
        )
        assert info["Digest"] == built.digest  # skopeo names the index it resolved through
        assert info["Architecture"] == platform.arch
        assert info["Layers"] == [d.digest for d in built.images[platform].layers]


def test_skopeo_reads_archive(tmp_path: Path) -> None:
    _need("skopeo")
    built = _build(tmp_path / "src")
    archive = write_archive(built, tmp_path / "image.tar", ref_name="1.0")
    raw = _run("skopeo", "inspect", "--raw", f"oci-archive:{archive}:1.0").encode()
    assert sha256_digest(raw) == built.digest


def test_umoci_unpacks_each_platform(tmp_path: Path) -> None:
    _need("umoci")
    built = _build(tmp_path / "src")
    layout = tmp_path / "layout"
    export(built, f"oci:{layout}:1.0", arch_tags=True)  # 1.0-amd64, 1.0-arm64 for umoci
    for platform in PLATFORMS:
        rootfs = _unpack(layout, f"1.0-{platform.arch_variant}", tmp_path / platform.slug)
        hello = rootfs / "usr/local/bin/hello"
        assert hello.read_text() == f"#!/bin/sh\necho hello from {platform}\n"
        assert hello.stat().st_mode & 0o7777 == 0o755
        assert (rootfs / "etc/hello.conf").stat().st_mode & 0o7777 == 0o644
        assert (rootfs / "usr/local").stat().st_mode & 0o7777 == 0o755
        assert int(hello.stat().st_mtime) == EPOCH


def test_base_from_oci_layout_is_prepended(tmp_path: Path) -> None:
    _need("umoci")
    base_specs = {
        p: ImageSpec(
            layers=[LayerSpec(tuple(entries_from_tree(_base_tree(tmp_path / "base", p))), "base")],
            env={"PATH": "/bin"},
            cmd=["/bin/sh"],
            created=1,
        )
        for p in PLATFORMS
    }
    base_built = build_index(base_specs)
    write_layout(base_built, tmp_path / "base-layout", ref_name="stable")
    bases = read_layout_base(f"oci:{tmp_path / 'base-layout'}:stable", PLATFORMS)
    built = _build(tmp_path / "src", bases)
    for platform in PLATFORMS:
        layers = built.images[platform].layers
        assert layers[0] == base_built.images[platform].layers[0]
        config = json.loads(built.images[platform].config)
        assert config["config"]["Env"] == ["PATH=/bin", "GREETING=hi"]
        assert "Cmd" not in config["config"]
    layout = tmp_path / "layout"
    export(built, f"oci:{layout}:1.0", arch_tags=True)
    rootfs = _unpack(layout, "1.0-arm64", tmp_path / "bundle")
    assert (rootfs / "bin/base-marker").read_text() == "base for linux/arm64\n"
    assert (rootfs / "usr/local/bin/hello").exists()


def _base_tree(root: Path, platform: Platform) -> Path:
    tree = root / platform.slug
    (tree / "bin").mkdir(parents=True)
    (tree / "bin/base-marker").write_text(f"base for {platform}\n")
    return tree


def test_base_made_by_umoci(tmp_path: Path) -> None:
    _need("umoci")
    base = tmp_path / "umoci-base"
    _run("umoci", "init", "--layout", str(base))
    _run("umoci", "new", "--image", f"{base}:latest")
    (tmp_path / "motd").write_text("from umoci\n")
    _run("umoci", "insert", "--image", f"{base}:latest", str(tmp_path / "motd"), "/etc/motd")
    bases = read_layout_base(f"oci:{base}", [AMD64])
    assert bases[AMD64].pinned.startswith(f"oci:{base}@sha256:")
    built = build_index(
        {
            AMD64: ImageSpec(
                base=bases[AMD64],
                layers=[LayerSpec(tuple(entries_from_tree(_stage(tmp_path, AMD64))), "app")],
            )
        }
    )
    assert validate_index(built) == []
    layout = write_layout(built, tmp_path / "layout", platform_refs={AMD64: "amd64"})
    rootfs = _unpack(layout, "amd64", tmp_path / "bundle")
    assert (rootfs / "etc/motd").read_text() == "from umoci\n"
    assert (rootfs / "usr/local/bin/hello").exists()


def test_two_builds_are_identical(tmp_path: Path) -> None:
    first = _build(tmp_path / "one")
    second = _build(tmp_path / "two")  # fresh files, different inodes and mtimes
    assert first.digest == second.digest
    a = write_layout(first, tmp_path / "a", ref_name="1.0")
    b = write_layout(second, tmp_path / "b", ref_name="1.0")
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)
    tar_a = write_archive(first, tmp_path / "a.tar")
    tar_b = write_archive(second, tmp_path / "b.tar")
    assert tar_a.read_bytes() == tar_b.read_bytes()
