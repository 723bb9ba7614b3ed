"""Whether this run may use the network (`--offline`, ``CROSSPLAN_OFFLINE=1``): one switch
every layer reads, and the error (exit 3) for what would need the network."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import NoReturn

from crossplan.errors import EnvironmentProblem

__all__ = ["ENV", "Offline", "forced", "is_offline", "refuse"]

ENV = "CROSSPLAN_OFFLINE"
_forced = False  # set by `plan run --offline` around planning and running


def is_offline(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return _forced or env.get(ENV, "").lower() in ("1", "on", "yes", "true")


@contextlib.contextmanager
def forced(on: bool) -> Iterator[None]:
    """Everything inside this block is offline when ``on`` (the CLI's --offline)."""
    global _forced
    before, _forced = _forced, _forced or on
    try:
        yield
    finally:
        _forced = before


class Offline(EnvironmentProblem):
    """What needs the network in an offline run (exit 3). Planning raises it at once instead
    of deferring it to the nodes (as a missing toolchain is): the whole run cannot go on."""


def refuse(what: str, *, step: str | None = None, file: str | None = None) -> NoReturn:
    """Exit 3: ``what`` needs the network and the run is offline."""
    raise Offline(
        f"--offline: {what}", step=step, file=file,
        hint=f"drop --offline (and unset {ENV}) to let this reach the network")
