"""Public C code built with CMake, Meson and make against a Debian sysroot: zlib's own
``example.c`` (shipped by Debian's zlib1g-dev under /usr/share/doc/zlib1g-dev/examples) found
through CMake's FindZLIB and Meson's ``dependency('zlib')`` (pkg-config), using crossplan's
generated toolchain / cross files, for linux/amd64, linux/arm64 and linux/arm/v7 with Debian's
cross gcc, and both for arm64 with zig too; no QEMU builds anything. Each binary runs with its
sysroot (qemu-user -L for the foreign ones), needs libz.so.1 (NEEDED) and has no RPATH into
the store; with ``link = "static"`` both find the sysroot's libz.a (zlib's symbols linked in).
The CMakeLists.txt and meson.build around example.c are ours (a few lines); the make project
is xz-utils' own examples directory with its Makefile (Debian's liblzma-dev), linking
liblzma, for arm64."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from elftools.elf.elffile import ELFFile
from sysroot_kit import apt_ok, exported, sysroot_env
from testkit import Cli, require_component

from crossplan.backends.elf import EM_AARCH64, EM_ARM, EM_X86_64, read_elf

EXAMPLE = Path("/usr/share/doc/zlib1g-dev/examples/example.c")
XZ_EXAMPLES = Path("/usr/share/doc/liblzma-dev/examples")
CMAKELISTS = """\
cmake_minimum_required(VERSION 3.13)
project(zlib_example C)
find_package(ZLIB REQUIRED)
add_executable(example example.c)
target_link_libraries(example ZLIB::ZLIB)
"""
MESON_BUILD = """\
project('zlib_example', 'c')
executable('example', 'example.c', dependencies : dependency('zlib'), install : true)
"""
CMAKE = ("cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release"
         " && cmake --build build && cp build/example {out}")
# what `meson install` writes: Meson drops its build-tree RPATHs there (with zig, the build
# tree's binary keeps one into the sysroot, which Meson does not count as a system dir)
MESON = ("meson setup build --cross-file $CROSSPLAN_MESON_CROSS_FILE --buildtype=release"
         " --prefix=/usr && meson install -C build --destdir $PWD/out"
         " && cp out/usr/bin/example {out}")
PLAN = f"""
[project]
name = "zlib-example"
platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"]

[sysroots.zlib]
packages = ["zlib1g-dev"]

[sysroots.lzma]
packages = ["liblzma-dev"]

[steps.xzmake]
kind = "c"
src = "xz"
sysroot = "lzma"
platforms = ["linux/arm64"]  # make with $CC/$CFLAGS: test_sysroot_curl covers all three
build = ['make CC="$CC" CFLAGS="$CFLAGS" LDFLAGS="$LDFLAGS -llzma" 01_compress_easy']
outputs = ["01_compress_easy"]
smoke = ["6"]
smoke_expect = "7zXZ"  # the .xz magic liblzma wrote (stdin is empty)

[steps.zcmake]
kind = "c"
src = "."
sysroot = "zlib"
build = ["{CMAKE.format(out="example-cmake")}"]
outputs = ["example-cmake"]
smoke = []
smoke_expect = "uncompress(): hello, hello!"

[steps.zmeson]
kind = "c"
src = "."
sysroot = "zlib"
build = ["{MESON.format(out="example-meson")}"]
outputs = ["example-meson"]
smoke = []
smoke_expect = "uncompress(): hello, hello!"

[steps.zcmake_zig]
kind = "c"
src = "."
sysroot = "zlib"
compiler = "zig"
platforms = ["linux/arm64"]
build = ["{CMAKE.format(out="example-zig")}"]
outputs = ["example-zig"]
smoke = []
smoke_expect = "uncompress(): hello, hello!"

[steps.zcmake_static]
kind = "c"
src = "."
sysroot = "zlib"
link = "static"
platforms = ["linux/arm64"]
build = ["{CMAKE.format(out="example-cmake-static")}"]
outputs = ["example-cmake-static"]
smoke = []
smoke_expect = "uncompress(): hello, hello!"

[steps.zmeson_static]
kind = "c"
src = "."
sysroot = "zlib"
link = "static"
platforms = ["linux/arm64"]
build = ["{MESON.format(out="example-meson-static")}"]
outputs = ["example-meson-static"]
smoke = []
smoke_expect = "uncompress(): hello, hello!"

[steps.zmeson_zig]
kind = "c"
src = "."
sysroot = "zlib"
compiler = "zig"
platforms = ["linux/arm64"]
build = ["{MESON.format(out="example-mzig")}"]
outputs = ["example-mzig"]
smoke = []
smoke_expect = "uncompress(): hello, hello!"
"""
MACHINES = {"linux/amd64": EM_X86_64, "linux/arm64": EM_AARCH64, "linux/arm/v7": EM_ARM}


def test_cmake_and_meson_projects_against_a_debian_sysroot(tmp_path: Path, cli: Cli) -> None:
    require_component(EXAMPLE.is_file(), "zlib1g-dev (zlib's example programs)")
    require_component((XZ_EXAMPLES / "Makefile").is_file(), "liblzma-dev (xz's examples)")
    require_component(apt_ok(), "apt-get and dpkg-deb")
    for tool, package in (("cmake", "cmake"), ("ninja", "ninja-build"),
                          ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
                          ("arm-linux-gnueabihf-gcc", "gcc-arm-linux-gnueabihf")):
        require_component(shutil.which(tool) is not None, package)
    proj = tmp_path / "p"
    proj.mkdir()
    shutil.copy(EXAMPLE, proj / "example.c")
    (proj / "CMakeLists.txt").write_text(CMAKELISTS)
    (proj / "meson.build").write_text(MESON_BUILD)
    (proj / "plan.toml").write_text(PLAN)
    shutil.copytree(XZ_EXAMPLES, proj / "xz")
    export = tmp_path / "export"
    res = cli("run", proj, "--smoke", "--json", "--export", export, timeout=900,
              env=sysroot_env(tmp_path))
    assert res.code == 0, res.stdout + res.stderr
    steps = res.steps()
    built = [(s, p) for s in ("zcmake", "zmeson") for p in MACHINES]
    built += [("zcmake_zig", "linux/arm64"), ("zmeson_zig", "linux/arm64")]
    names = {"zcmake": "example-cmake", "zmeson": "example-meson", "zcmake_zig": "example-zig",
             "zmeson_zig": "example-mzig"}
    for step, plat in built:
        # ran, printed "uncompress(): hello, hello!" (smoke_expect); first line: zlib.h's version
        assert steps[f"{step}@{plat}"]["smoke"].startswith("ok: zlib version 1."), steps
        binary = exported(export, step, plat, names[step])
        elf = read_elf(binary)
        assert elf.machine == MACHINES[plat], (step, plat)
        assert "libz.so.1" in elf.needed, (step, plat, elf.needed)  # the sysroot's zlib
        assert b"sysroots/roots" not in binary.read_bytes(), (step, plat)  # no store RPATH
    # link = "static": CMake's FindZLIB and Meson's pkg-config pick the sysroot's libz.a
    for step in ("zcmake_static", "zmeson_static"):
        assert steps[f"{step}@linux/arm64"]["smoke"].startswith("ok: zlib version 1."), steps
        binary = exported(export, step, "linux/arm64", step.replace("z", "example-", 1)
                          .replace("_", "-"))
        assert read_elf(binary).static, step
        with binary.open("rb") as f:
            symbols = {s.name for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()}
        assert {"deflate", "inflate", "zlibVersion"} <= symbols, step  # zlib linked in
    # xz's own Makefile, driven by the step's CC/CFLAGS/LDFLAGS
    assert steps["xzmake@linux/arm64"]["smoke"].startswith("ok: "), steps
    elf = read_elf(exported(export, "xzmake", "linux/arm64", "01_compress_easy"))
    assert elf.machine == EM_AARCH64 and "liblzma.so.5" in elf.needed, elf.needed
    # the key covers the build tool: `plan explain` shows cmake's and meson's versions
    for step, tool in (("zmeson", "meson: 1."), ("zcmake", "cmake: cmake version 3.")):
        res = cli("explain", proj, step, "--platform", "linux/arm64", "--json",
                  env=sysroot_env(tmp_path))
        assert res.code == 0, res.stderr
        components = json.loads(res.stdout)["components"]
        assert tool in components["toolchain"], components["toolchain"]
        if shutil.which("bwrap"):  # the meson wrapper ran inside the sandbox
            assert components["sandbox"] == "bwrap", components
