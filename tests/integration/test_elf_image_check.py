"""The image step reads every ELF file it copies (pyelftools) and refuses binaries that
cannot start on its base, before anything is written or pushed: a glibc-dynamic binary in
``scratch`` fails with the step, the binary and the fix; the same program with
``libc = "musl"``, or on a glibc base image made here, passes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sysroot_kit import exported, shared_toolcache
from testkit import Cli, require_component

from crossplan.backends.elf import read_elf

HELLO_C = '#include <stdio.h>\nint main(void) { puts("hello from c"); return 0; }\n'
CROSS_LIBC = Path("/usr/aarch64-linux-gnu/lib")
TC = shared_toolcache(Path("/tmp/crossplan-test-toolcache"))


def _project(root: Path, libc: str, base: str = "scratch") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "hello.c").write_text(HELLO_C)
    (root / "plan.toml").write_text(f"""
[project]
name = "elfcheck"
platforms = ["linux/arm64"]

[steps.hello]
kind = "c"
src = "."
compiler = "zig"
libc = "{libc}"
build = ["$CC $CFLAGS -o hello hello.c $LDFLAGS"]
outputs = ["hello"]

[steps.image]
kind = "image"
base = "{base}"
copy = [{{ from = "hello", src = "hello", dest = "/usr/local/bin/hello" }}]
entrypoint = ["/usr/local/bin/hello"]
""")
    return root


@pytest.fixture(autouse=True)
def _zig() -> None:
    import os

    from crossplan.backends.toolchains.find import find_zig

    require_component(find_zig(dict(os.environ)) is not None, "zig (pip install ziglang)")



def test_glibc_binary_into_scratch_fails_before_writing(tmp_path: Path, cli: Cli) -> None:
    proj = _project(tmp_path / "gnu", "gnu")
    out = tmp_path / "out"
    res = cli("run", proj, "--output", f"oci:{out}", timeout=600, env=TC)
    assert res.code == 1, res.stdout + res.stderr
    err = res.stderr
    assert "image" in err and "hello:hello (linux/arm64)" in err, err
    assert "dynamically linked (/lib/ld-linux-aarch64.so.1)" in err, err
    assert "scratch (no libc)" in err and 'libc = "musl"' in err, err
    assert "Traceback" not in err
    assert not out.exists(), "nothing may be written when the check fails"


def test_musl_binary_into_scratch_passes(tmp_path: Path, cli: Cli) -> None:
    proj = _project(tmp_path / "musl", "musl")
    out = tmp_path / "out"
    res = cli("run", proj, "--output", f"oci:{out}", timeout=600, env=TC)
    assert res.code == 0, res.stdout + res.stderr
    assert (out / "index.json").is_file()


def _glibc_base(layout: Path) -> None:
    """An arm64 base holding Debian's arm64 glibc (loader + libc.so.6) at its usual paths."""
    from crossplan.backends.oci import ImageSpec, LayerEntry, LayerSpec, build_index, write_layout
    from crossplan.platforms import Platform

    entries = [
        LayerEntry("/lib/ld-linux-aarch64.so.1", source=CROSS_LIBC / "ld-linux-aarch64.so.1",
                   mode=0o755),
        LayerEntry("/lib/aarch64-linux-gnu/libc.so.6", source=CROSS_LIBC / "libc.so.6",
                   mode=0o755),
    ]
    spec = ImageSpec(layers=[LayerSpec(tuple(entries), "glibc")], created=0)
    built = build_index({Platform.parse("linux/arm64"): spec}, created=0)
    write_layout(built, layout, ref_name="base")


def test_glibc_binary_on_a_glibc_base_passes(tmp_path: Path, cli: Cli) -> None:
    require_component((CROSS_LIBC / "libc.so.6").is_file(), "libc6-arm64-cross")
    base = tmp_path / "base"
    _glibc_base(base)
    proj = _project(tmp_path / "gnu-base", "gnu", base=f"oci:{base}:base")
    out, export = tmp_path / "out", tmp_path / "export"
    res = cli("run", proj, "--output", f"oci:{out}", "--export", export, timeout=600, env=TC)
    assert res.code == 0, res.stdout + res.stderr
    assert (out / "index.json").is_file()
    # the binary really is glibc-dynamic: the base's loader and libc are what made it pass
    hello = read_elf(exported(export, "hello", "linux/arm64", "hello"))
    assert hello.interpreter == "/lib/ld-linux-aarch64.so.1" and "libc.so.6" in hello.needed
    assert hello.glibc is not None


@pytest.mark.parametrize("held_by", ["engine", "registry"])
def test_buildx_reads_its_base_and_refuses_a_binary_it_cannot_start(
    tmp_path: Path, cli: Cli, held_by: str,
) -> None:
    """The buildx backend checks binaries against the base it will build on, read like the
    oci backend's (here: a base with files but no libc, so a glibc-dynamic binary is refused
    before buildx runs), from the local engine (docker save) or, when only the registry has
    it, from the manifest the plan pinned; not judged by its name."""
    from buildx_env import REGISTRY, require_engine, sh, unique

    require_engine()
    base = f"{REGISTRY}/{unique('nolibc')}:1"
    ctx = tmp_path / "basectx"
    (ctx / "etc").mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY etc /etc\n")
    (ctx / "etc" / "os-release").write_text("ID=nolibc\n")
    sh("docker", "buildx", "build", "--provenance=false", "--platform", "linux/arm64",
       "--tag", base, "--push", str(ctx))  # (the docker driver keeps it in the engine too)
    if held_by == "registry":
        sh("docker", "image", "rm", "-f", base, check=False)  # only the registry has it now
    proj = _project(tmp_path / "bx", "gnu", base=base)
    toml = proj / "plan.toml"
    toml.write_text(toml.read_text().replace('kind = "image"',
                                             'kind = "image"\nbackend = "buildx"'))
    res = cli("run", proj, "--json", timeout=600, env=TC)
    assert res.code == 1, res.stdout + res.stderr
    err = res.stderr
    assert "hello:hello (linux/arm64)" in err and "dynamically linked" in err, err
    assert "Traceback" not in err
