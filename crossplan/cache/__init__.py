"""Caching: the local content-addressed store and the shared remote cache in an OCI registry."""

from crossplan.cache.remote import RemoteCache, RemoteSettings
from crossplan.cache.store import CorruptEntry, Entry, OutputFile, Store, default_store_dir

__all__ = [
    "CorruptEntry",
    "Entry",
    "OutputFile",
    "RemoteCache",
    "RemoteSettings",
    "Store",
    "default_store_dir",
]
