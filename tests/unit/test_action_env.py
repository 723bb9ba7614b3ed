"""A step's ``env`` over its toolchain's: replaced, except RUSTFLAGS, which is appended so the
toolchain's --remap-path-prefix flags (reproducibility) survive a step's own flags. Lowering
goes through the probe (a fake toolchain, injected) and the pure planner."""

from __future__ import annotations

from pathlib import Path

from crossplan.backends.toolchains.base import BuildAction
from crossplan.planner import NodeId, make_plan
from crossplan.planner.facts import TOOLCACHE, WORKDIR
from crossplan.platforms import Platform
from crossplan.probe import gather
from crossplan.recipes import from_dict
from crossplan.recipes.models import Step

ARM64 = Platform.parse("linux/arm64")


class FakeRust:
    name = "rust"

    def fingerprint(self, platform: Platform) -> str:
        return f"fake rust for {platform}"

    def action(
        self, step: object, platform: Platform, workdir: Path, cache: Path, *,
        source: Path | None = None,
    ) -> BuildAction:
        return BuildAction(commands=(("cargo", "build"),), outputs=("bin",),
                           env={"RUSTFLAGS": f"--remap-path-prefix={workdir}=.",
                                "CARGO_HOME": f"{cache}/home"})


def _plan(tmp_path: Path, env: dict[str, str]):  # type: ignore[no-untyped-def]
    (tmp_path / "src").mkdir()
    recipe = from_dict({"project": {"name": "t", "platforms": ["linux/arm64"]},
                        "steps": {"bin": {"kind": "rust", "src": "src", "env": env}}},
                       file=tmp_path / "plan.toml")

    def resolve(sid: str, s: Step) -> FakeRust:
        return FakeRust()

    facts = gather(recipe, environ={"PATH": "/bin"}, toolchains=resolve)
    return make_plan(recipe, None, facts)


def test_step_rustflags_are_appended_and_other_vars_replaced(tmp_path: Path) -> None:
    p = _plan(tmp_path, {"RUSTFLAGS": "-C target-feature=+crt-static", "CARGO_HOME": "/mine"})
    action = p.nodes[NodeId("bin", str(ARM64))].action
    env = action.environment()
    assert env["RUSTFLAGS"] == f"--remap-path-prefix={WORKDIR}=. -C target-feature=+crt-static"
    assert env["CARGO_HOME"] == "/mine"


def test_toolchain_commands_are_written_against_the_logical_roots(tmp_path: Path) -> None:
    p = _plan(tmp_path, {})
    pn = p.nodes[NodeId("bin", str(ARM64))]
    assert pn.action.commands == (("cargo", "build"),)
    assert pn.action.environment()["CARGO_HOME"] == f"{TOOLCACHE}/rust/home"
    assert pn.action.environment()["TARGETARCH"] == "arm64"
    assert pn.action.environment()["HOME"] == f"{WORKDIR}/.home"
    assert pn.components["toolchain"] == "fake rust for linux/arm64"
    assert pn.action.toolchain == "rust" and pn.action.known
