"""CMake toolchain files and Meson cross files: content per platform for gcc and zig, with and
without a Debian sysroot, as a C step's action carries them (and its key covers cmake/meson)."""

from __future__ import annotations

import configparser
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from crossplan.backends.toolchains.base import BuildAction
from crossplan.backends.toolchains.c import CToolchain
from crossplan.backends.toolchains.cc import CrossCC, find_cc
from crossplan.backends.toolchains.crossfiles import (
    MESON_CROSS_FILE,
    TOOLCHAIN_FILE,
    CrossSpec,
    cmake_toolchain,
    cross_files,
    meson_cross,
    meson_host,
)
from crossplan.backends.toolchains.find import build_tools_named
from crossplan.backends.toolchains.sysroot import with_sysroot
from crossplan.errors import RecipeError
from crossplan.platforms import Platform
from crossplan.probe.toolchains import tool_roots
from crossplan.recipes.models import CStep

AMD64, ARM64, ARMV7 = (Platform.parse(p) for p in ("linux/amd64", "linux/arm64", "linux/arm/v7"))
S390X = Platform.parse("linux/s390x")
ROOT = "/store/sysroots/roots/abc"


def _which(name: str) -> Path | None:
    return Path("/usr/bin") / name if name.startswith(("aarch64", "arm-", "x86_64")) else None


def gcc(platform: Platform) -> CrossCC:
    return find_cc(platform, "gnu", "gcc", zig=None, which=_which, build=AMD64)


def zig(platform: Platform) -> CrossCC:
    return find_cc(platform, "gnu", "zig", zig=Path("/opt/zig/zig"), which=_which, build=AMD64)


def _ini(text: str) -> configparser.ConfigParser:
    """A Meson machine file read as INI (its values are Python-like literals)."""
    cp = configparser.ConfigParser(comment_prefixes=("#",))
    cp.read_string(text)
    return cp


def _action(tc: CToolchain, platform: Platform, build: str = "cmake -S . -B b") -> BuildAction:
    return tc.action(CStep(kind="c", build=(build,), libc="gnu"), platform, Path("/W"),
                     Path("/C"))


@pytest.mark.parametrize(("platform", "processor", "family", "triple"), [
    (AMD64, "x86_64", "x86_64", "x86_64-linux-gnu"),
    (ARM64, "aarch64", "aarch64", "aarch64-linux-gnu"),
    (ARMV7, "armv7l", "arm", "arm-linux-gnueabihf"),
])
def test_gcc_with_a_debian_sysroot(
    platform: Platform, processor: str, family: str, triple: str
) -> None:
    built = with_sysroot(_action(CToolchain(gcc), platform), ROOT, platform, "c", "gcc")
    cmake = built.files[TOOLCHAIN_FILE]
    assert f"set(CMAKE_SYSTEM_PROCESSOR {processor})" in cmake
    assert f'set(CMAKE_C_COMPILER "/usr/bin/{triple}-gcc")' in cmake
    assert f'set(CMAKE_SYSROOT "{ROOT}")' in cmake  # gcc reads Debian's layout under it
    assert f'set(CMAKE_FIND_ROOT_PATH "{ROOT}")' in cmake  # not the cross gcc's /usr/<triple>
    assert f"set(CMAKE_LIBRARY_ARCHITECTURE {triple})" in cmake
    assert "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)" in cmake
    assert "set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)" in cmake
    assert f'set(ENV{{PKG_CONFIG_LIBDIR}} "{ROOT}/usr/lib/{triple}/pkgconfig:' in cmake
    assert "IMPLICIT_LINK_DIRECTORIES" not in cmake
    meson = _ini(built.files[MESON_CROSS_FILE])
    assert meson["binaries"]["c"] == f"['/usr/bin/{triple}-gcc']"
    assert meson["binaries"]["pkg-config"] == "['pkg-config']"
    assert meson["host_machine"]["cpu_family"] == f"'{family}'"
    assert meson["host_machine"]["cpu"] == f"'{processor}'"
    assert meson["host_machine"]["endian"] == "'little'"
    assert meson["properties"]["sys_root"] == f"'{ROOT}'"
    assert meson["properties"]["pkg_config_libdir"].startswith(
        f"['{ROOT}/usr/lib/{triple}/pkgconfig', '{ROOT}/usr/share/pkgconfig'")
    # Meson ignores CFLAGS for a cross build's host machine: the sysroot is in its c_args
    assert f"'--sysroot={ROOT}'" in meson["built-in options"]["c_args"]
    assert f"'--sysroot={ROOT}'" in meson["built-in options"]["c_link_args"]
    assert built.env["CROSSPLAN_MESON_CROSS_FILE"] == f"/W/{MESON_CROSS_FILE}"
    assert built.env["CMAKE_TOOLCHAIN_FILE"] == f"/W/{TOOLCHAIN_FILE}"


def test_zig_with_a_debian_sysroot_keeps_its_libc() -> None:
    built = with_sysroot(_action(CToolchain(zig), ARM64), ROOT, ARM64, "c", "zig")
    cmake = built.files[TOOLCHAIN_FILE]
    assert "CMAKE_SYSROOT" not in cmake  # zig would look for its libc there
    assert 'set(CMAKE_C_COMPILER "/W/.crossplan/cc/cc")' in cmake  # the one-word wrapper
    assert f"-idirafter {ROOT}/usr/include/aarch64-linux-gnu" in cmake  # CMAKE_C_FLAGS_INIT
    # the sysroot's libraries count as implicit: no RPATH into the store
    assert (f'set(CMAKE_PLATFORM_IMPLICIT_LINK_DIRECTORIES "{ROOT}/usr/lib/aarch64-linux-gnu" '
            f'"{ROOT}/lib/aarch64-linux-gnu")') in cmake
    assert f'set(CMAKE_FIND_ROOT_PATH "{ROOT}")' in cmake
    meson = _ini(built.files[MESON_CROSS_FILE])
    assert meson["binaries"]["c"] == "['/W/.crossplan/cc/cc']"
    assert f"'-L{ROOT}/usr/lib/aarch64-linux-gnu'" in meson["built-in options"]["c_link_args"]


def test_plain_cross_files_without_a_sysroot() -> None:
    cmake = _action(CToolchain(gcc), ARM64).files[TOOLCHAIN_FILE]
    assert 'set(CMAKE_FIND_ROOT_PATH "/usr/aarch64-linux-gnu")' in cmake
    assert "CMAKE_SYSROOT" not in cmake and "PKG_CONFIG_SYSROOT_DIR" not in cmake
    zig_files = _action(CToolchain(zig), ARMV7).files
    assert "CMAKE_FIND_ROOT_PATH " not in zig_files[TOOLCHAIN_FILE]
    meson = _ini(zig_files[MESON_CROSS_FILE])
    assert "sys_root" not in meson["properties"]
    assert "pkg_config_libdir" not in meson["properties"]  # zig alone: no target libraries
    assert meson["host_machine"]["cpu"] == "'armv7l'"


def test_meson_host_machine_table() -> None:
    assert meson_host(S390X) == {"system": "linux", "cpu_family": "s390x", "cpu": "s390x",
                                 "endian": "big"}
    with pytest.raises(RecipeError):
        meson_host(Platform.parse("linux/mips64"))


def test_quoting_survives_odd_paths() -> None:
    spec = CrossSpec(platform=ARM64, kind="gcc", cc='/o d/c"c', cxx="/x/c++", ar="ar",
                     ranlib="ranlib", strip="strip", cflags="-DX='a b' -O2")
    assert 'set(CMAKE_C_COMPILER "/o d/c\\"c")' in cmake_toolchain(spec)
    meson = _ini(meson_cross(spec))
    assert meson["built-in options"]["c_args"] == "['-DX=a b', '-O2']"


class _Versions:
    def __call__(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
        return {"/usr/bin/cmake --version": "cmake version 3.25.1\n",
                "/usr/bin/aarch64-linux-gnu-gcc --version": "gcc 12\n"}[" ".join(argv)]


def test_cmake_and_meson_versions_enter_the_fingerprint_when_named() -> None:
    assert build_tools_named(("cmake -S . -B b && cmake --build b",)) == ("cmake",)
    assert build_tools_named(("$MESON setup b --cross-file x", "ninja")) == ("meson",)
    assert build_tools_named(("make -f toolchain.cmake meson.build",)) == ()
    tc = CToolchain(gcc, runner=_Versions(), build_tools={"cmake": ("/usr/bin/cmake",)})
    assert tc.fingerprint(ARM64).splitlines()[-1] == "cmake: cmake version 3.25.1"
    assert "cmake" not in CToolchain(gcc, runner=_Versions()).fingerprint(ARM64)


def test_meson_wrapper_on_path_and_bound_by_the_sandbox(tmp_path: Path) -> None:
    py = tmp_path / "venv" / "bin" / "python3"
    py.parent.mkdir(parents=True)
    py.write_text("")
    tc = CToolchain(gcc, build_tools={"meson": (str(py), "-m", "mesonbuild.mesonmain")},
                    path="/usr/bin:/x/bin")
    built = _action(tc, ARM64, "meson setup b --cross-file $CROSSPLAN_MESON_CROSS_FILE")
    assert built.env["PATH"] == "/W/.crossplan/bin:/usr/bin:/x/bin"
    assert built.env["MESON"] == "/W/.crossplan/bin/meson"
    assert built.files[".crossplan/bin/meson"] == (
        f'#!/bin/sh\nexec {py} -m mesonbuild.mesonmain "$@"\n')
    assert ("chmod", "0755", "/W/.crossplan/bin/meson") in built.commands
    roots = tool_roots(built.commands, {}, built.files)
    assert str(tmp_path / "venv") in roots  # the interpreter behind the wrapper is bound
    # a step whose build does not run meson gets no wrapper (and binds no interpreter)
    plain = _action(CToolchain(gcc, path="/usr/bin"), ARM64, "make")
    assert ".crossplan/bin/meson" not in plain.files and "MESON" not in plain.env
    assert "PATH" not in plain.env


def test_a_build_tool_the_step_runs_but_is_missing_is_named(tmp_path: Path) -> None:
    from crossplan.backends.toolchains.choose import toolchain_for
    from crossplan.errors import EnvironmentProblem
    from crossplan.recipes.models import ToolchainPins

    step = CStep(kind="c", build=("cmake -S . -B b && cmake --build b",), libc="musl",
                 compiler="zig")
    env = {"PATH": str(tmp_path), "CROSSPLAN_MANAGED_TOOLCHAINS": "off"}
    tc = toolchain_for(step, ToolchainPins(), tmp_path, env)
    assert isinstance(tc, CToolchain) and tc.missing == ("cmake",)
    with pytest.raises(EnvironmentProblem) as err:
        tc.action(step, ARM64, Path("/W"), Path("/C"))
    assert "runs cmake, which is not installed" in err.value.message
    assert "apt install cmake" in (err.value.hint or "")


def test_static_links_find_static_libraries() -> None:
    spec = CrossSpec(platform=ARM64, kind="zig", cc="cc", cxx="c++", ar="ar", ranlib="r",
                     strip="s", ldflags="-static -L/x")
    cmake = cmake_toolchain(spec)
    assert 'set(CMAKE_EXE_LINKER_FLAGS_INIT "-static -L/x")' in cmake
    assert 'set(CMAKE_SHARED_LINKER_FLAGS_INIT "-L/x")' in cmake  # not -static for a .so
    assert ('set(CMAKE_PROJECT_INCLUDE "${CMAKE_CURRENT_LIST_DIR}/static-libraries.cmake")'
            in cmake)  # after project(), which resets the suffixes
    assert "set(CMAKE_FIND_LIBRARY_SUFFIXES .a)" in cross_files(spec)[
        ".crossplan/static-libraries.cmake"]
    meson = _ini(meson_cross(spec))["built-in options"]
    assert meson["default_library"] == "'static'" and meson["prefer_static"] == "true"
    dynamic = CrossSpec(platform=ARM64, kind="gcc", cc="cc", cxx="c++", ar="ar", ranlib="r",
                        strip="s", ldflags="")
    assert "CMAKE_PROJECT_INCLUDE" not in cmake_toolchain(dynamic)
    assert set(cross_files(dynamic)) == {TOOLCHAIN_FILE, MESON_CROSS_FILE}
    assert "prefer_static" not in _ini(meson_cross(dynamic))["built-in options"]
