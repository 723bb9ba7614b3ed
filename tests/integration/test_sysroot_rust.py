"""A Rust crate with a ``-sys`` dependency: libz-sys (Debian's librust-libz-sys-dev, used
through a cargo ``[source]`` replacement pointing at /usr/share/cargo/registry) finds zlib
through pkg-config in a Debian sysroot; built for linux/amd64 and linux/arm64 without QEMU,
each binary runs with its sysroot and needs libz.so.1. The sysroot lock makes keys stable:
another store and another download of the same locked packages give the same key; a changed
package list changes it and ``plan explain`` names the package."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sysroot_kit import apt_ok, exported, sysroot_env
from testkit import Cli, require_component

from crossplan.backends.elf import EM_AARCH64, EM_X86_64, read_elf

REGISTRY = Path("/usr/share/cargo/registry")
PLAN = """
[project]
name = "zlib-version"
platforms = ["linux/amd64", "linux/arm64"]

[sysroots.zlib]
debian = "bookworm"
packages = ["zlib1g-dev"]

[steps.zver]
kind = "rust"
src = "."
sysroot = "zlib"
smoke = []
smoke_expect = "zlib 1.2.13"
"""
CARGO_TOML = """[package]
name = "zver"
version = "0.1.0"
edition = "2018"

[dependencies]
libz-sys = { version = "1.1", default-features = false, features = ["stock-zlib"] }
"""
MAIN = """fn main() {
    let v = unsafe { std::ffi::CStr::from_ptr(libz_sys::zlibVersion()) };
    println!("zlib {}", v.to_str().unwrap());
}
"""
CARGO_CONFIG = f"""[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "{REGISTRY}"
"""


def _project(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / ".cargo").mkdir()
    (root / "Cargo.toml").write_text(CARGO_TOML)
    (root / "src" / "main.rs").write_text(MAIN)
    (root / ".cargo" / "config.toml").write_text(CARGO_CONFIG)
    (root / "plan.toml").write_text(PLAN)
    return root


def _requirements() -> None:
    require_component((REGISTRY / "libz-sys-1.1.8").is_dir(), "librust-libz-sys-dev")
    require_component(apt_ok(), "apt-get and dpkg-deb")
    require_component(shutil.which("aarch64-linux-gnu-gcc") is not None, "gcc-aarch64-linux-gnu")
    require_component(Path("/usr/lib/rustlib/aarch64-unknown-linux-gnu").is_dir(),
                      "libstd-rust-dev:arm64 (Debian's Rust with the arm64 std)")


def test_libz_sys_crate_against_a_debian_sysroot(tmp_path: Path, cli: Cli) -> None:
    _requirements()
    proj = _project(tmp_path / "p")
    export = tmp_path / "export"
    env = sysroot_env(tmp_path)
    res = cli("run", proj, "--smoke", "--json", "--export", export, timeout=1200, env=env)
    assert res.code == 0, res.stdout[-3000:] + res.stderr[-3000:]
    steps = res.steps()
    for plat, machine in (("linux/amd64", EM_X86_64), ("linux/arm64", EM_AARCH64)):
        assert steps[f"zver@{plat}"]["smoke"] == "ok: zlib 1.2.13", steps[f"zver@{plat}"]
        elf = read_elf(exported(export, "zver", plat, "zver"))
        assert elf.machine == machine
        assert "libz.so.1" in elf.needed, elf.needed  # zlib from the sysroot, not bundled


def test_sysroot_lock_keeps_keys_stable(tmp_path: Path, cli: Cli) -> None:
    _requirements()
    proj = _project(tmp_path / "p")
    one = sysroot_env(tmp_path / "one")

    def key(env: dict[str, str], store: Path) -> tuple[str, dict[str, object]]:
        res = cli("explain", proj, "zver", "--platform", "linux/arm64", "--json",
                  env={**env, "CROSSPLAN_CACHE_DIR": str(store)}, timeout=600)
        assert res.code == 0, res.stderr
        data = res.json()
        return str(data["components"]), data

    first, data = key(one, tmp_path / "store-1")
    assert (proj / "sysroots.lock").is_file()
    locked = json.loads((proj / "sysroots.lock").read_text())
    # "another machine": another store and a private, empty sysroot cache: the locked
    # packages are downloaded again, verified by sha256, and give the same key
    other = {**one, "CROSSPLAN_SYSROOT_CACHE": str(tmp_path / "fresh-sysroots")}
    second, _ = key(other, tmp_path / "store-2")
    assert second == first
    assert json.loads((proj / "sysroots.lock").read_text()) == locked  # not re-resolved
    assert any((tmp_path / "fresh-sysroots" / "debs").glob("*.deb"))
    # a lock that lies about a package's hash is refused, naming the package
    bad = json.loads(json.dumps(locked))
    zlib = next(p for p in bad["sysroots"]["zlib"]["arches"]["arm64"] if p["name"] == "zlib1g")
    zlib["sha256"] = "0" * 64
    (proj / "sysroots.lock").write_text(json.dumps(bad))
    res = cli("run", proj, "--platform", "linux/arm64",
              env=other, timeout=600)
    assert res.code == 3, res.stdout + res.stderr
    assert "zlib1g" in res.stderr and "sysroots.lock records 0000000000000000" in res.stderr
    # a changed package list: re-resolved, new key, and explain names the added packages
    (proj / "sysroots.lock").write_text(json.dumps(locked))
    cli("run", proj, "--platform", "linux/arm64", env={**one, "CROSSPLAN_CACHE_DIR":
        str(tmp_path / "store-1")}, timeout=1200)
    (proj / "plan.toml").write_text(PLAN.replace('["zlib1g-dev"]', '["zlib1g-dev", "libbz2-dev"]'))
    changed, data = key(one, tmp_path / "store-1")
    assert changed != first
    assert any(c.startswith("sysroot.packages.libbz2-dev changed") for c in data["changes"]), \
        data["changes"]
