"""``[sysroots.NAME] debian = "bookworm", packages = ["zlib1g-dev"]``: target libraries
from Debian's packages, which a compile step links against with ``sysroot = "NAME"``."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from crossplan.recipes.rules import Violation

__all__ = ["SysrootConfig"]

_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_SUITE = re.compile(r"^[a-z][a-z0-9-]*$")


def _packages(names: tuple[str, ...]) -> tuple[str, ...]:
    if not names:
        raise Violation("a sysroot needs packages", 'packages = ["zlib1g-dev"]')
    for n in names:
        if not _PACKAGE.match(n):
            raise Violation(
                f"{n!r} is not a Debian package name",
                "lower-case names such as libsqlite3-dev, without :arch (the target's "
                "architecture is added per platform)",
            )
    return tuple(sorted(set(names)))


def _suite(name: str) -> str:
    if not _SUITE.match(name):
        raise Violation(f"{name!r} is not a Debian suite", 'debian = "bookworm"')
    return name


class SysrootConfig(BaseModel):
    """One named sysroot: Debian packages (and their dependencies) for each target arch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    debian: Annotated[str, AfterValidator(_suite)] = "bookworm"
    packages: Annotated[tuple[str, ...], AfterValidator(_packages)]
