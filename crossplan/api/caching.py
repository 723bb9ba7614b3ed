"""The shared remote cache by hand: ``cache_push``, ``cache_pull``, ``cache_keygen``."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from crossplan.api.planning import store_for
from crossplan.cache.remote import RemoteCache, RemoteSettings
from crossplan.cache.signing import default_key_name, write_keypair
from crossplan.errors import RecipeError
from crossplan.executors.events import OnEvent
from crossplan.executors.substitution import RemoteRun, pull_plan, push_plan, remote_settings
from crossplan.planner.graph import NodeId
from crossplan.planner.plan import Plan

__all__ = ["cache_keygen", "cache_pull", "cache_push"]


def _remote_for(
    p: Plan, cache_remote: str | None, cache_mode: str | None,
    environ: Mapping[str, str] | None, *, write: bool,
) -> RemoteSettings:
    settings = remote_settings(
        p.recipe, remote=cache_remote, mode=cache_mode,
        environ=os.environ if environ is None else environ,
    )
    if settings is None:
        raise RecipeError(
            "no remote cache is configured (or its mode is off)", file=p.recipe.label,
            hint='set [cache] remote = "HOST/REPO", --cache-remote or CROSSPLAN_CACHE_REMOTE',
        )
    if write and settings.mode != "readwrite":
        raise RecipeError(
            f"the remote cache's mode is '{settings.mode}': pushing needs readwrite",
            file=p.recipe.label, hint="pass --cache-mode readwrite",
        )
    return settings


def cache_push(
    p: Plan, *, cache_dir: str | Path | None = None, cache_remote: str | None = None,
    cache_mode: str | None = None, environ: Mapping[str, str] | None = None,
    on_warning: Callable[[str], None] | None = None, on_event: OnEvent | None = None,
) -> dict[NodeId, str]:
    """Warm the remote cache: push the local entry of every node of ``p`` that has one
    (``on_event``: a ``phase`` event per node pushed, with its blobs and bytes)."""
    settings = _remote_for(p, cache_remote, cache_mode, environ, write=True)
    store = store_for(cache_dir)
    try:
        with RemoteCache(settings, store) as rc:
            statuses = push_plan(p, rc, on_event)
        for w in rc.warnings:
            if on_warning is not None:
                on_warning(w)
        return dict(statuses)
    finally:
        store.close()


def cache_pull(
    p: Plan, *, cache_dir: str | Path | None = None, cache_remote: str | None = None,
    cache_mode: str | None = None, environ: Mapping[str, str] | None = None,
    on_warning: Callable[[str], None] | None = None, on_event: OnEvent | None = None,
) -> dict[NodeId, str]:
    """Substitute every key of ``p`` the remote can resolve into the local store
    (``on_event``: a ``phase`` event per node pulled, with its blobs and bytes)."""
    settings = _remote_for(p, cache_remote, cache_mode, environ, write=False)
    store = store_for(cache_dir)
    try:
        run = RemoteRun(p, RemoteCache(settings, store))
        statuses = pull_plan(run, on_event)
        for w in run.warnings:
            if on_warning is not None:
                on_warning(w)
        return dict(statuses)
    finally:
        store.close()


def cache_keygen(out: str | Path, name: str | None = None) -> tuple[Path, Path]:
    """Write an ed25519 key pair for signing remote cache entries: (secret, public)."""
    return write_keypair(Path(out), name or default_key_name())
