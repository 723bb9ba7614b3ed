"""A copy of examples/shell whose image is tagged into a test registry, and independent
registry reads (plain httpx) to check what crossplan reports against."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import httpx

__all__ = ["ACCEPT", "fetch_blob", "fetch_manifest", "retag", "shell_copy"]

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def retag(project: Path, *tags: str, arch_tags: bool = False) -> None:
    """Point the image step's ``tags`` at ``tags`` (and set ``arch_tags``)."""
    toml = project / "plan.toml"
    text = re.sub(r"(?m)^(tags = .*\n)(arch_tags = .*\n)?", "", toml.read_text())
    quoted = ", ".join(f'"{t}"' for t in tags)
    line = f"tags = [{quoted}]\n" + ("arch_tags = true\n" if arch_tags else "")
    text = re.sub(r"(?m)^(\[steps\.image\]\n)", lambda m: m.group(1) + line, text)
    toml.write_text(text)
    assert f"tags = [{quoted}]" in toml.read_text()


def shell_copy(dest: Path, *tags: str, arch_tags: bool = False) -> Path:
    """examples/shell (gen, count -> report@{amd64,arm64} -> image) tagged with ``tags``."""
    from testkit import EXAMPLES

    shutil.copytree(EXAMPLES / "shell", dest)
    retag(dest, *tags, arch_tags=arch_tags)
    return dest


def fetch_manifest(address: str, repo: str, ref: str) -> dict[str, Any]:
    resp = httpx.get(f"http://{address}/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT},
                     timeout=30)
    resp.raise_for_status()
    doc: dict[str, Any] = resp.json()
    return doc


def fetch_blob(address: str, repo: str, digest: str) -> bytes:
    resp = httpx.get(f"http://{address}/v2/{repo}/blobs/{digest}", timeout=30,
                     follow_redirects=True)
    resp.raise_for_status()
    return resp.content
