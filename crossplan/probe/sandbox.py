"""Can local steps run in a bubblewrap sandbox here? Resolves ``[sandbox] mode``."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from functools import cache

from crossplan.errors import EnvironmentProblem
from crossplan.recipes.models import Recipe

__all__ = ["OFF_WARNING", "bwrap_path", "resolve_sandbox", "sandbox_problem"]

OFF_WARNING = (
    "steps run without a sandbox: they can read any file of this machine (undeclared inputs "
    "then go unnoticed by keys), reach the network and leave processes behind"
)
_SEARCH = "/usr/bin:/bin:/usr/local/bin:/usr/sbin:/sbin"


def bwrap_path() -> str:
    """The bubblewrap executable (checked by ``sandbox_problem``)."""
    return shutil.which("bwrap", path=_SEARCH) or "bwrap"


@cache
def sandbox_problem(path: str | None = None) -> str | None:
    """None when bubblewrap runs a trivial sandbox here; else why not."""
    bwrap = shutil.which("bwrap", path=path or _SEARCH)
    if bwrap is None:
        return "bubblewrap is not installed (no `bwrap`)"
    try:
        proc = subprocess.run(
            [bwrap, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "--new-session",
             "--proc", "/proc", "--dev", "/dev", "true"],
            capture_output=True, text=True, timeout=20, check=False, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{bwrap} cannot run: {exc}"
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        return f"{bwrap} cannot create a sandbox here: {why} (user namespaces disabled?)"
    return None


def resolve_sandbox(recipe: Recipe, environ: Mapping[str, str]) -> tuple[str, str | None]:
    """(``bwrap`` | ``off``, a warning or None). ``CROSSPLAN_SANDBOX`` overrides the recipe.
    ``bwrap`` that cannot work here is an EnvironmentProblem (exit 3)."""
    mode = environ.get("CROSSPLAN_SANDBOX") or recipe.sandbox.mode
    if mode not in ("auto", "bwrap", "off"):
        raise EnvironmentProblem(
            f"CROSSPLAN_SANDBOX={mode!r} is not a sandbox mode", hint="use auto, bwrap or off"
        )
    if mode == "off":
        return "off", OFF_WARNING
    problem = sandbox_problem()
    if problem is None:
        return "bwrap", None
    if mode == "bwrap":
        raise EnvironmentProblem(
            f"the sandbox is required ([sandbox] mode = \"bwrap\") but {problem}",
            file=recipe.label,
            hint="install bubblewrap (Debian: apt-get install bubblewrap), or set "
            '[sandbox] mode = "off" (steps then see the whole machine)',
        )
    return "off", f"{OFF_WARNING}: {problem}; install bubblewrap to sandbox them"
