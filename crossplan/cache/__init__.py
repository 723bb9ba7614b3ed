"""Caching: the local content-addressed store and the shared remote cache in an OCI registry.

Names are imported on first use: the store alone does not load the registry client."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOME = {
    **dict.fromkeys(["RemoteCache", "RemoteSettings"], "crossplan.cache.remote"),
    **dict.fromkeys(["CorruptEntry", "Entry", "OutputFile", "Store", "default_store_dir"],
                    "crossplan.cache.store"),
}

__all__ = [
    "CorruptEntry",
    "Entry",
    "OutputFile",
    "RemoteCache",
    "RemoteSettings",
    "Store",
    "default_store_dir",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'crossplan.cache' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from crossplan.cache.remote import RemoteCache, RemoteSettings
    from crossplan.cache.store import CorruptEntry, Entry, OutputFile, Store, default_store_dir
