"""The shared remote cache as a run sees it: batched look-ups, fetches, pushes, warnings."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, TypeVar

import httpx

from crossplan.backends.oci.descriptor import DigestMismatch
from crossplan.backends.oci.reference import Reference
from crossplan.backends.oci.registry import (
    RegistryClient,
    RegistryDenied,
    RegistryUnreachable,
)
from crossplan.cache.artifact import Artifact, BlobRef
from crossplan.cache.signing import PublicKey, SigningKey
from crossplan.cache.store import Entry, Store
from crossplan.cache.transfer import Miss, Registry, Transfer
from crossplan.errors import CrossplanError, EnvironmentProblem, RecipeError

__all__ = ["MODES", "Mode", "Registry", "RemoteCache", "RemoteSettings", "Warn"]

Mode = Literal["readwrite", "read", "off"]
MODES: tuple[Mode, ...] = ("readwrite", "read", "off")
# (action key or None, message): told of every problem, once per problem.
Warn = Callable[[str | None, str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class RemoteSettings:
    """Where the remote cache lives and how to use it (resolved from plan.toml/flags/env)."""

    remote: str
    mode: Mode = "readwrite"
    signing_key: SigningKey | None = None
    trusted_keys: tuple[PublicKey, ...] = ()

    def reference(self) -> Reference:
        ref = Reference.parse(self.remote)
        if ref.tag or ref.digest:
            raise RecipeError(
                f"cache remote '{self.remote}' must be a repository, without tag or digest",
                hint='e.g. remote = "localhost:5000/demo/plan-cache"',
            )
        return ref


class RemoteCache:
    """Action entries as OCI artifacts in ``settings.remote``, substituted into ``store``.

    Never fails a build: an unreachable or refusing registry, a corrupt, incomplete, unsigned
    or foreign entry, a failed push - each becomes a warning (``on_warning(key, message)``)
    and a miss. After the registry is found unreachable or denies us, the cache is switched
    off for the rest of the run, so that is said once.
    """

    def __init__(
        self,
        settings: RemoteSettings,
        store: Store,
        *,
        client: Registry | None = None,
        on_warning: Warn | None = None,
        workers: int = 8,
    ) -> None:
        ref = settings.reference()
        self.settings = settings
        self.store = store
        self.repo = ref.repository
        self.name = ref.name
        self.registry = ref.registry
        self.client: Registry = client or RegistryClient(
            ref.registry, attempts=3, backoff=0.2, timeout=30.0
        )
        self.transfer = Transfer(
            self.client, store, self.repo, self.name,
            trusted_keys=settings.trusted_keys, signing_key=settings.signing_key,
        )
        self.on_warning = on_warning
        self._workers = max(1, workers)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pinged = False
        self._down: str | None = None
        self._push_down: str | None = None
        self.warnings: list[str] = []

    # -- state -----------------------------------------------------------------------------
    @property
    def readable(self) -> bool:
        return self.settings.mode != "off" and self._down is None

    @property
    def writable(self) -> bool:
        return self.settings.mode == "readwrite" and self._down is None and self._push_down is None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.client.close()

    def __enter__(self) -> RemoteCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _warn(self, key: str | None, message: str) -> None:
        with self._lock:
            self.warnings.append(message)
        if self.on_warning is not None:
            self.on_warning(key, message)

    def _switch_off(self, key: str | None, exc: EnvironmentProblem, *, push: bool = False) -> None:
        """The registry is unreachable, denies us or fails: say so once, then stop asking
        (only stop pushing when a push was denied or failed)."""
        with self._lock:
            if self._down is not None or (push and self._push_down is not None):
                return
            if push and not isinstance(exc, RegistryUnreachable | RegistryDenied):
                message = (
                    f"could not push {key} to remote cache {self.name} ({exc.message}); "
                    "the local result is kept; not pushing for the rest of this run"
                )
            elif isinstance(exc, RegistryDenied):
                what = "pushes to" if push else "access to"
                message = (
                    f"remote cache {self.name}: the registry denied {what} it "
                    f"(HTTP {exc.status}); log in with `docker login {self.registry}` "
                    "(credentials are read from "
                    "~/.docker/config.json or $DOCKER_CONFIG) or check your permissions; "
                    + ("results stay in the local store" if push else "building locally")
                )
            elif isinstance(exc, RegistryUnreachable):
                message = (
                    f"remote cache {self.name} is unreachable ({exc.message}); "
                    "building locally without it"
                )
            else:
                message = f"remote cache {self.name} failed ({exc.message}); not used for this run"
            if push and not isinstance(exc, RegistryUnreachable):
                self._push_down = message
            else:
                self._down = message
        self._warn(None, message)  # about the registry, not about one key

    def _ping(self, key: str | None) -> bool:
        """One GET /v2/ before the first request, so an unreachable registry costs one try."""
        with self._lock:
            pinged, self._pinged = self._pinged, True
        if not pinged:
            try:
                self.client.ping()
            except EnvironmentProblem as exc:
                self._switch_off(key, exc)
        return self._down is None

    def _map(self, fn: Callable[[str], object], items: list[str]) -> None:
        if len(items) <= 1:
            for item in items:
                fn(item)
            return
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="remote-cache")
            pool = self._pool
        list(pool.map(fn, items))

    # -- reads -----------------------------------------------------------------------------
    def lookup(self, key: str) -> Artifact | None:
        """The verified artifact for ``key`` (manifest, entry JSON, signature), or None.

        Blobs are not fetched: ``Artifact.entry.digests()`` already tells the outputs."""
        return self.lookup_many([key])[key]

    def lookup_many(self, keys: Iterable[str]) -> dict[str, Artifact | None]:
        """Look ``keys`` up in parallel (bounded); every key is in the answer."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Artifact | None] = dict.fromkeys(wanted)
        if not wanted or not self.readable or not self._ping(wanted[0]):
            return found

        def one(key: str) -> None:
            found[key] = self._guard(key, lambda: self.transfer.lookup(key))

        self._map(one, wanted)
        return found

    def fetch_many(self, artifacts: Iterable[Artifact]) -> dict[str, Entry | None]:
        """Download every blob the artifacts need (in parallel), verify each against its
        sha256 and blake3, put it into the local store. Entries are returned, not published."""
        arts = {a.key: a for a in artifacts}
        result: dict[str, Entry | None] = dict.fromkeys(arts)
        if not arts or not self.readable:
            return result
        owners: dict[str, list[str]] = {}
        refs: dict[str, BlobRef] = {}
        for art in arts.values():
            for ref in art.blobs:
                if not self.store.has_blob(ref.blake3):
                    owners.setdefault(ref.blake3, []).append(art.key)
                    refs[ref.blake3] = ref
        failed: dict[str, str] = {}

        def one(digest: str) -> None:
            key = owners[digest][0]
            ok = self._guard(
                key, lambda: self.transfer.fetch_blob(key, refs[digest]), failed=failed
            )
            if ok is None:
                for k in owners[digest]:
                    failed.setdefault(k, "")

        self._map(one, list(refs))
        for key, art in arts.items():
            if key not in failed and self._down is None:
                result[key] = art.entry
        return result

    def substitute(self, key: str) -> Entry | None:
        """Look up, fetch and publish one key into the local store."""
        art = self.lookup(key)
        if art is None:
            return None
        entry = self.fetch_many([art])[key]
        if entry is not None:
            self.store.publish(entry)
        return entry

    def has(self, key: str) -> bool | None:
        """Whether the remote holds a usable entry for ``key`` (None: cannot tell)."""
        art = self.lookup(key)
        if art is None and not self.readable:
            return None
        return art is not None

    # -- writes ----------------------------------------------------------------------------
    def push(self, entry: Entry) -> bool:
        """Upload ``entry``'s blobs (skipping those present), entry JSON, then the tag.

        The tag is written last, so it never names an incomplete artifact; blobs are
        content-addressed, so concurrent pushers of the same key are harmless."""
        if not self.writable or not self._ping(entry.key):
            return False
        return bool(self._guard(entry.key, lambda: self.transfer.push(entry), push=True))

    def push_many(self, entries: Iterable[Entry]) -> dict[str, bool]:
        todo = {e.key: e for e in entries}
        done: dict[str, bool] = dict.fromkeys(todo, False)

        def one(key: str) -> None:
            done[key] = self.push(todo[key])

        if todo and self.writable and self._ping(next(iter(todo))):
            self._map(one, list(todo))
        return done

    # -- errors ----------------------------------------------------------------------------
    def _guard(
        self,
        key: str,
        fn: Callable[[], T],
        *,
        push: bool = False,
        failed: dict[str, str] | None = None,
    ) -> T | None:
        """Run one remote operation for ``key``; turn every failure into a warning + None."""
        if self._down is not None:
            return None
        try:
            return fn()
        except Miss as exc:
            message = str(exc)
        except (RegistryUnreachable, RegistryDenied) as exc:
            self._switch_off(key, exc, push=push)
            return None
        except httpx.HTTPError as exc:  # e.g. a body that fails to decode
            problem = EnvironmentProblem(f"{type(exc).__name__}: {exc}")
            self._switch_off(key, problem, push=push)
            return None
        except DigestMismatch as exc:
            message = (
                f"remote cache entry {key} is corrupt ({exc.message}); discarded, "
                + ("not pushed" if push else "building locally")
            )
        except (CrossplanError, OSError, ValueError) as exc:
            text = exc.message if isinstance(exc, CrossplanError) else f"{exc!r}"
            if isinstance(exc, EnvironmentProblem):
                self._switch_off(key, exc, push=push)
                return None
            if push:
                message = (
                    f"could not push {key} to remote cache {self.name} ({text}); "
                    "the local result is kept"
                )
            else:
                message = f"remote cache entry {key} could not be used ({text}); treated as a miss"
        if failed is not None:
            with self._lock:
                if key in failed:
                    return None
                failed[key] = message
        self._warn(key, message)
        return None

