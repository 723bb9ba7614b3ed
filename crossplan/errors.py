"""The exception hierarchy; each error carries its CLI exit code and a hint on what to do."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "EXIT_ENVIRONMENT",
    "EXIT_OK",
    "EXIT_STEP_FAILED",
    "EXIT_USAGE",
    "CrossplanError",
    "EnvironmentProblem",
    "RecipeError",
    "StepFailed",
]

EXIT_OK = 0
EXIT_STEP_FAILED = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3


class CrossplanError(Exception):
    """Base class. ``str()`` gives the full message: where, what, and what to do."""

    exit_code = EXIT_STEP_FAILED

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        step: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.step = step
        self.line = line
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "")
        if self.step:
            where = f"{where}: step '{self.step}'" if where else f"step '{self.step}'"
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class RecipeError(CrossplanError):
    """The recipe or the command line is wrong (exit 2)."""

    exit_code = EXIT_USAGE


class StepFailed(CrossplanError):
    """A step ran and failed, or produced something it must not (exit 1)."""

    exit_code = EXIT_STEP_FAILED

    def __init__(
        self, message: str, *, log_tail: str = "", log: Path | None = None, **kw: object
    ) -> None:
        self.log_tail = log_tail
        self.log = log  # the step's full log, when it ran
        super().__init__(message, **kw)  # type: ignore[arg-type]


class EnvironmentProblem(CrossplanError):
    """Something outside the recipe is missing or unreachable: a tool, daemon, registry (exit 3)."""

    exit_code = EXIT_ENVIRONMENT
