"""Names a package imports on first use (PEP 562): the one ``__getattr__`` of the lazy
packages (crossplan, crossplan.api, crossplan.cache, crossplan.backends.oci)."""

from __future__ import annotations

import importlib
import sys

TYPE_CHECKING = False  # typing is not imported: `plan --version` costs about one `python`
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, home: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``name`` is imported from the module
    ``home[name]`` on first use, then kept in the package like any other name."""

    def load(name: str) -> Any:
        where = home.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where), name)
        setattr(sys.modules[package], name, value)
        return value

    return load
