"""Caching: the local content-addressed store and the shared remote cache in an OCI registry.

Names are imported on first use: the store alone does not load the registry client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crossplan._lazy import lazy_names

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


__getattr__ = lazy_names(__name__, _HOME)


if TYPE_CHECKING:
    from crossplan.cache.remote import RemoteCache, RemoteSettings
    from crossplan.cache.store import CorruptEntry, Entry, OutputFile, Store, default_store_dir
