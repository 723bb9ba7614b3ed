"""``plan test``: run an image once per platform (``docker run --platform``) and check it.

The image comes from the store (its OCI layout, loaded into the engine under a
``crossplan-test/...`` name) or, with ``pushed``, from its first tag in the registry.
"exec format error" means the engine could not run that platform's binaries: without a
binfmt registration that is an environment problem with a known fix.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossplan.backends.buildx.binfmt import binfmt_fix, can_execute, read_binfmt
from crossplan.backends.buildx.engine import Engine
from crossplan.backends.toolchains.targets import cmake_processor
from crossplan.cache.store import Entry, Store
from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.platforms import Platform, build_platform
from crossplan.recipes.models import ImageStep

__all__ = ["SmokeResult", "expected_output", "load_entry", "smoke_image"]

LAYOUT_DIR = "oci"
META = "buildx.json"


@dataclass(frozen=True)
class SmokeResult:
    """One platform's run: passed, or why not (``environment``: not the image's fault)."""

    platform: Platform
    ok: bool
    exit_code: int
    output: str
    expected: str | None
    diagnosis: str | None = None
    environment: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "platform": str(self.platform), "ok": self.ok, "exit_code": self.exit_code,
            "output": self.output, "expected": self.expected, "diagnosis": self.diagnosis,
            "environment_problem": self.environment,
        }


def expected_output(step: ImageStep, platform: Platform) -> str | None:
    """``smoke_expect`` with ``{os} {arch} {variant} {platform} {machine}`` filled in."""
    if step.smoke_expect is None:
        return None
    try:
        machine = cmake_processor(platform)
    except RecipeError:
        machine = platform.arch
    text = step.smoke_expect
    for key, value in {"os": platform.os, "arch": platform.arch, "variant": platform.variant,
                       "platform": str(platform), "machine": machine}.items():
        text = text.replace("{" + key + "}", value)
    return text


def load_entry(store: Store, entry: Entry, name: str, engine: Engine, *, step: str) -> str:
    """Load a stored image layout into the engine as ``name``; returns the reference."""
    with tempfile.TemporaryDirectory(dir=store.root / "tmp") as tmp:
        store.materialize(entry, Path(tmp))
        meta_path = Path(tmp) / META
        if meta_path.exists():
            meta = json.loads(meta_path.read_text())
            if meta.get("deferred"):
                raise EnvironmentProblem(
                    meta["deferred"]["message"], step=step,
                    hint="push it (`plan run --push`), then test the pushed image: "
                    "`plan test --pushed`; " + meta["deferred"]["hint"],
                )
        layout = Path(tmp) / LAYOUT_DIR
        index = json.loads((layout / "index.json").read_text())
        top = index["manifests"][0]
        tag = name.rsplit(":", 1)[1]
        top["annotations"] = {**top.get("annotations", {}),
                              "io.containerd.image.name": f"docker.io/{name}",
                              "org.opencontainers.image.ref.name": tag}
        index["manifests"] = [top]
        (layout / "index.json").write_text(json.dumps(index))
        archive = Path(tmp) / "image.tar"
        with tarfile.open(archive, "w") as tf:
            for item in sorted(layout.iterdir()):
                tf.add(item, arcname=item.name)
        shutil.rmtree(layout)
        engine.load(archive)
    return name


def smoke_image(
    engine: Engine, ref: str, step: ImageStep, platforms: Sequence[Platform]
) -> list[SmokeResult]:
    """``docker run --rm --platform P ref`` (with the step's ``smoke`` as the command line,
    replacing entrypoint and cmd) for each platform."""
    results = []
    entries = read_binfmt()
    build = build_platform()
    for p in platforms:
        if step.smoke:
            out = engine.run(ref, p, list(step.smoke[1:]), entrypoint=[step.smoke[0]])
        else:
            out = engine.run(ref, p)
        want = expected_output(step, p)
        ok = out.exit_code == 0 and (want is None or want in out.output)
        diagnosis, env = None, False
        if "exec format error" in out.output:
            if not can_execute(p, build, entries):
                diagnosis = (f"exec format error: this machine cannot run {p} binaries (no QEMU "
                             f"binfmt_misc registration); {binfmt_fix([p])}")
                env = True
            else:
                diagnosis = (f"exec format error although {p} binaries can run here: the image's "
                             f"{p} variant holds binaries for another architecture")
        elif not ok and out.exit_code == 0:
            diagnosis = f"output does not contain the expected {want!r}"
        elif not ok:
            diagnosis = f"exited with status {out.exit_code}"
        results.append(SmokeResult(p, ok, out.exit_code, out.output, want, diagnosis, env))
    return results
