"""``plan lock`` pins the Debian sysroots a plan builds against in sysroots.lock, and
``plan run --locked`` (what CI runs) builds from that lock as it is: without one it stops
(exit 2, the file and the fix named) before resolving or writing anything. The build is
zig with a glibc floor against the sysroot (curl's public example linking libcurl): the
binary needs nothing newer than the floor, links libcurl.so.4, and runs with its sysroot."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sysroot_kit import apt_ok, exported, sysroot_env
from testkit import Cli, require_component

from crossplan.backends.elf import EM_AARCH64, read_elf

EXAMPLE = Path("/usr/share/doc/libcurl4/examples/parseurl.c")
PLAN = """
[project]
name = "curl-locked"
platforms = ["linux/arm64"]

[sysroots.curl]
debian = "bookworm"
packages = ["libcurl4-openssl-dev"]

[steps.parseurl]
kind = "c"
src = "."
exclude = ["sysroots.lock"]
sysroot = "curl"
compiler = "zig"
libc = "gnu.2.31"
smoke = []
smoke_expect = "Host name: example.com"
build = ["$CC $CFLAGS -o parseurl parseurl.c $LDFLAGS $(pkg-config --libs libcurl)"]
outputs = ["parseurl"]
"""


def test_plan_lock_then_run_locked(tmp_path: Path, cli: Cli) -> None:
    require_component(EXAMPLE.is_file(), "libcurl4-doc (curl's example programs)")
    require_component(apt_ok(), "apt-get and dpkg-deb")
    proj = tmp_path / "p"
    proj.mkdir()
    shutil.copy(EXAMPLE, proj / "parseurl.c")
    (proj / "plan.toml").write_text(PLAN)
    env = sysroot_env(tmp_path)
    lock = proj / "sysroots.lock"

    refused = cli("run", proj, "--locked", env=env, timeout=300)
    assert refused.code == 2, refused.stderr
    assert "--locked" in refused.stderr and "sysroots.lock" in refused.stderr
    assert "plan lock" in refused.stderr and "Traceback" not in refused.stderr
    assert not lock.exists()  # nothing resolved, nothing written

    first = cli("lock", proj, "--json", env=env, timeout=600)
    assert first.code == 0, first.stderr
    lines = json.loads(first.stdout)["sysroots"]
    assert len(lines) == 1 and lines[0].startswith("sysroot 'curl' arm64:")
    assert lines[0].endswith("locked"), lines
    pinned = lock.read_bytes()
    names = {p["name"] for p in json.loads(pinned)["sysroots"]["curl"]["arches"]["arm64"]}
    assert {"libcurl4", "libcurl4-openssl-dev", "libc6"} <= names

    again = cli("lock", proj, env=env, timeout=600)
    assert again.code == 0 and "arm64" in again.stdout and "unchanged" in again.stdout, (
        again.stdout + again.stderr)

    export = tmp_path / "export"
    built = cli("run", proj, "--locked", "--smoke", "--json", "--export", export, env=env,
                timeout=900)
    assert built.code == 0, built.stderr[-3000:]
    assert lock.read_bytes() == pinned
    assert built.steps()["parseurl@linux/arm64"]["smoke"] == "ok: Host name: example.com"
    elf = read_elf(exported(export, "parseurl", "linux/arm64", "parseurl"))
    assert elf.machine == EM_AARCH64 and "libcurl.so.4" in elf.needed
    assert elf.glibc is not None and elf.glibc <= (2, 31)  # zig's floor, not the sysroot's
