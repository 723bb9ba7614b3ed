"""Caching: the local content-addressed store (and the remote cache in an OCI registry)."""

from crossplan.cache.store import CorruptEntry, Entry, OutputFile, Store, default_store_dir

__all__ = ["CorruptEntry", "Entry", "OutputFile", "Store", "default_store_dir"]
