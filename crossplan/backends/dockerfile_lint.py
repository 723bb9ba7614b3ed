"""The Dockerfile lint: no ``RUN`` executes on the target platform (under QEMU) unless the
step says ``emulate = true``; each finding names the step, the line and the cost."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from crossplan.platforms import Platform

__all__ = ["EMULATION_COST", "LintFinding", "lint"]

EMULATION_COST = "5-15x slower under QEMU emulation than cross-compiling on $BUILDPLATFORM"


@dataclass(frozen=True)
class LintFinding:
    """A ``RUN`` that executes on the target platform. ``allowed``: the step says emulate."""

    step: str
    line: int
    stage: str
    allowed: bool

    @property
    def severity(self) -> str:
        return "note" if self.allowed else "warning"

    def message(self, platforms: Sequence[Platform] = ()) -> str:
        where = f"line {self.line} (stage {self.stage})"
        on = ", ".join(str(p) for p in platforms) or "the target platform"
        if self.allowed:
            return (f"step '{self.step}': RUN at {where} executes on {on} (emulate = true): "
                    f"expect it to be {EMULATION_COST}")
        return (f"step '{self.step}': RUN at {where} executes on {on}, "
                f"{EMULATION_COST}; cross-compile in a "
                "FROM --platform=$BUILDPLATFORM stage, or say emulate = true on the step")


_FROM = re.compile(
    r"^FROM\s+(?:--platform=(?P<plat>\S+)\s+)?(?P<image>\S+)(?:\s+AS\s+(?P<name>\S+))?\s*$",
    re.IGNORECASE,
)
_BUILD_PLATFORM = ("$BUILDPLATFORM", "${BUILDPLATFORM}")


def lint(
    text: str, *, image_step: str, emulate_ok: frozenset[str] = frozenset()
) -> list[LintFinding]:
    """Every ``RUN`` in a stage that runs on the target platform (no
    ``--platform=$BUILDPLATFORM``, or built on such a stage). Stages named ``build-<step>``
    belong to that step, the others to the image step."""
    findings: list[LintFinding] = []
    on_build: dict[str, bool] = {}
    stage, stage_on_build = "", False
    for lineno, raw in _logical_lines(text):
        word = raw.split(None, 1)[0].upper() if raw.strip() else ""
        if word == "FROM":
            m = _FROM.match(raw.strip())
            if m is None:
                continue
            name = m.group("name") or f"stage-{len(on_build)}"
            if m.group("plat"):
                stage_on_build = m.group("plat") in _BUILD_PLATFORM
            else:
                stage_on_build = on_build.get(m.group("image"), False)
            stage = name
            on_build[name] = stage_on_build
        elif word == "RUN" and not stage_on_build:
            step = stage.removeprefix("build-") if stage.startswith("build-") else image_step
            findings.append(LintFinding(step, lineno, stage, step in emulate_ok))
    return findings


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for i, line in enumerate(text.splitlines(), 1):
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not buf:
            start = i
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        out.append((start, buf + line))
        buf = ""
    if buf:
        out.append((start, buf))
    return out
