"""A step's ``env`` over its toolchain's: replaced, except RUSTFLAGS, which is appended so the
toolchain's --remap-path-prefix flags (reproducibility) survive a step's own flags."""

from __future__ import annotations

from pathlib import Path

from crossplan.backends.toolchains.base import BuildAction
from crossplan.planner import NodeId, PlannedNode
from crossplan.platforms import Platform
from crossplan.recipes.models import RustStep, Step
from crossplan.runner.actions import make_action_factory

ARM64 = Platform.parse("linux/arm64")


class FakeRust:
    name = "rust"

    def fingerprint(self, platform: Platform) -> str:
        return "fake"

    def action(self, step: object, platform: Platform, workdir: Path, cache: Path) -> BuildAction:
        return BuildAction(commands=(("cargo", "build"),),
                           env={"RUSTFLAGS": "--remap-path-prefix=/w=.", "CARGO_HOME": "/c"})


def test_step_rustflags_are_appended_and_other_vars_replaced(tmp_path: Path) -> None:
    step = RustStep(kind="rust", env={"RUSTFLAGS": "-C target-feature=+crt-static",
                                      "CARGO_HOME": "/mine"})

    def resolve(sid: str, s: Step) -> FakeRust:
        return FakeRust()

    factory = make_action_factory(resolve, lambda *a: BuildAction(commands=()), tmp_path)
    pn = PlannedNode(NodeId("bin", str(ARM64)), step, ARM64, (ARM64,), (), {}, None)
    env = factory(pn, tmp_path / "w", {}).env
    assert env["RUSTFLAGS"] == "--remap-path-prefix=/w=. -C target-feature=+crt-static"
    assert env["CARGO_HOME"] == "/mine"
