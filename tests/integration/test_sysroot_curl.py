"""Public C code against a Debian sysroot: libcurl's own example ``parseurl.c`` (from
Debian's libcurl4-doc) built for linux/amd64, linux/arm64 and linux/arm/v7 against
libcurl4-openssl-dev from a sysroot, with no QEMU to build; each binary runs with its sysroot
(qemu-user -L for the foreign ones) and links libcurl.so.4 (NEEDED). The lock records every
package with its sha256."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sysroot_kit import apt_ok, exported, sysroot_env
from testkit import Cli, require_component

from crossplan.backends.elf import EM_AARCH64, EM_ARM, EM_X86_64, read_elf

EXAMPLE = Path("/usr/share/doc/libcurl4/examples/parseurl.c")
PLAN = """
[project]
name = "curl-example"
platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"]

[sysroots.curl]
debian = "bookworm"
packages = ["libcurl4-openssl-dev"]

[steps.parseurl]
kind = "c"
src = "."
sysroot = "curl"
build = ["$CC $CFLAGS -o parseurl parseurl.c $LDFLAGS $(pkg-config --libs libcurl)"]
outputs = ["parseurl"]
smoke = []
smoke_expect = "Host name: example.com"
"""


def test_curl_example_against_a_debian_sysroot(tmp_path: Path, cli: Cli) -> None:
    require_component(EXAMPLE.is_file(), "libcurl4-doc (curl's example programs)")
    require_component(apt_ok(), "apt-get and dpkg-deb")
    require_component(shutil.which("aarch64-linux-gnu-gcc") is not None, "gcc-aarch64-linux-gnu")
    require_component(shutil.which("arm-linux-gnueabihf-gcc") is not None,
                      "gcc-arm-linux-gnueabihf")
    proj = tmp_path / "p"
    proj.mkdir()
    shutil.copy(EXAMPLE, proj / "parseurl.c")
    (proj / "plan.toml").write_text(PLAN)
    env = sysroot_env(tmp_path)
    export = tmp_path / "export"
    res = cli("run", proj, "--smoke", "--json", "--export", export, timeout=900, env=env)
    assert res.code == 0, res.stdout + res.stderr
    steps = res.steps()
    for plat, machine in (("linux/amd64", EM_X86_64), ("linux/arm64", EM_AARCH64),
                          ("linux/arm/v7", EM_ARM)):
        assert steps[f"parseurl@{plat}"]["smoke"] == "ok: Host name: example.com", steps
        elf = read_elf(exported(export, "parseurl", plat, "parseurl"))
        assert elf.machine == machine
        assert "libcurl.so.4" in elf.needed, elf.needed  # linked against the sysroot's libcurl
    lock = json.loads((proj / "sysroots.lock").read_text())["sysroots"]["curl"]
    assert lock["packages"] == ["libcurl4-openssl-dev"]
    for arch in ("amd64", "arm64", "armhf"):
        names = {p["name"]: p for p in lock["arches"][arch]}
        assert {"libcurl4", "libcurl4-openssl-dev", "libc6"} <= set(names)
        assert names["libcurl4"]["arch"] == arch and len(names["libcurl4"]["sha256"]) == 64
