"""RemoteCache against an in-memory registry: push, batched look-ups, verified fetches,
and every failure turned into one warning and a miss."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from remote_fakes import FakeRegistry

from crossplan.backends.oci.descriptor import sha256_digest
from crossplan.backends.oci.mediatypes import OCI_MANIFEST
from crossplan.backends.oci.registry import RegistryDenied, RegistryError, RegistryUnreachable
from crossplan.cache.artifact import BlobRef, encode, tag_for
from crossplan.cache.remote import RemoteCache, RemoteSettings
from crossplan.cache.signing import SigningKey
from crossplan.cache.store import Entry, OutputFile, Store
from crossplan.errors import RecipeError

REMOTE = "fake.test:5000/team/plan-cache"
REPO = "team/plan-cache"


@pytest.fixture
def fake() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    yield a, b
    a.close()
    b.close()


def make_entry(store: Store, n: int, *, extra: bytes = b"") -> Entry:
    """A published entry with two files (one a symlink) and a log."""
    app = store.put_bytes(f"binary {n}".encode() + extra)
    link = store.put_bytes(b"app")
    log = store.put_bytes(f"log of {n}".encode())
    files = (
        OutputFile("bin/app", app, 0o755, len(f"binary {n}".encode() + extra)),
        OutputFile("bin/app-link", link, 0o777, 0, "app"),
    )
    entry = Entry(f"{n:064x}", f"step{n}@linux/arm64", files, log, 0.5, 1e9, {})
    store.publish(entry)
    return entry


class Warnings(list[tuple[str | None, str]]):
    def __call__(self, key: str | None, message: str) -> None:
        self.append((key, message))

    def text(self) -> str:
        return "\n".join(m for _, m in self)


def cache(
    fake: FakeRegistry, store: Store, warnings: Warnings | None = None, **settings: object
) -> RemoteCache:
    return RemoteCache(
        RemoteSettings(REMOTE, **settings),  # type: ignore[arg-type]
        store, client=fake, on_warning=warnings,
    )


def test_push_then_substitute_into_another_store(
    fake: FakeRegistry, stores: tuple[Store, Store]
) -> None:
    a, b = stores
    entry = make_entry(a, 1)
    assert cache(fake, a).push(entry)
    assert tag_for(entry.key) in fake.manifests
    warnings = Warnings()
    got = cache(fake, b, warnings).substitute(entry.key)
    assert got == entry and warnings == []
    assert b.get(entry.key) == entry  # published, blobs verified by the store too
    for f in entry.files:
        assert b.blob_path(f.digest).read_bytes() == a.blob_path(f.digest).read_bytes()
    assert entry.log is not None and b.has_blob(entry.log)


def test_push_skips_blobs_the_registry_has(fake: FakeRegistry, stores: tuple[Store, Store]) -> None:
    a, _ = stores
    one, two = make_entry(a, 1), make_entry(a, 2)
    rc = cache(fake, a)
    assert rc.push(one)
    uploads = len(fake.ops("upload_blob"))
    assert uploads == 4  # app, link target, log, entry JSON
    assert rc.push(two)  # shares the link target's blob
    assert len(fake.ops("upload_blob")) == uploads + 3
    assert rc.push(one)  # again: nothing to upload, the tag is rewritten identically
    assert len(fake.ops("upload_blob")) == uploads + 3


def test_tag_written_after_every_blob(fake: FakeRegistry, stores: tuple[Store, Store]) -> None:
    a, _ = stores
    cache(fake, a).push(make_entry(a, 1))
    ops = [o for o, _ in fake.calls if o in ("upload_blob", "put_manifest")]
    assert ops[-1] == "put_manifest" and ops.count("put_manifest") == 1


def test_lookup_many_asks_in_parallel_and_answers_every_key(
    fake: FakeRegistry, stores: tuple[Store, Store]
) -> None:
    a, b = stores
    entries = [make_entry(a, n) for n in range(6)]
    pusher = cache(fake, a)
    for e in entries[:4]:
        pusher.push(e)
    fake.delay = 0.05
    rc = cache(fake, b)
    found = rc.lookup_many([e.key for e in entries])
    assert [found[e.key] is not None for e in entries] == [True] * 4 + [False] * 2
    assert fake.max_active > 1
    arts = [art for art in found.values() if art is not None]
    assert arts[0].entry.digests() == entries[0].digests()  # known before any blob download
    assert not b.has_blob(entries[0].files[0].digest)
    fetched = rc.fetch_many(arts)
    assert all(fetched[e.key] == e for e in entries[:4])
    assert b.keys() == []  # fetched, not published: the caller decides


def test_a_miss_is_quiet(fake: FakeRegistry, stores: tuple[Store, Store]) -> None:
    warnings = Warnings()
    assert cache(fake, stores[1], warnings).substitute("00" * 32) is None
    assert warnings == []


def _pushed(fake: FakeRegistry, store: Store, n: int = 1, **settings: object) -> Entry:
    entry = make_entry(store, n)
    assert cache(fake, store, **settings).push(entry)
    return entry


def _sha(store: Store, digest: str) -> str:
    return sha256_digest(store.blob_path(digest).read_bytes())


@pytest.mark.parametrize("how", ["flipped", "truncated"])
def test_corrupt_blob_is_discarded_and_named(
    fake: FakeRegistry, stores: tuple[Store, Store], how: str
) -> None:
    a, b = stores
    entry = _pushed(fake, a)
    sha = _sha(a, entry.files[0].digest)
    good = fake.blobs[sha]
    fake.serve[sha] = bytes([good[0] ^ 1]) + good[1:] if how == "flipped" else good[:-3]
    warnings = Warnings()
    assert cache(fake, b, warnings).substitute(entry.key) is None
    assert len(warnings) == 1 and entry.key in warnings.text()
    assert "corrupt" in warnings.text() and "building locally" in warnings.text()
    assert b.keys() == [] and not b.has_blob(entry.files[0].digest)


def test_blob_must_match_the_blake3_too(fake: FakeRegistry, stores: tuple[Store, Store]) -> None:
    """The entry JSON names a blob by sha256 that hashes right, but is not the blake3 the
    entry promises: refused (both digests are checked)."""
    a, b = stores
    entry = make_entry(a, 1)
    other = b"some other bytes"
    fake.blobs[sha256_digest(other)] = other
    refs = {
        d: BlobRef(d, sha256_digest(a.blob_path(d).read_bytes()), a.blob_path(d).stat().st_size)
        for d in {*entry.digests().values(), entry.log or ""}
    }
    app = entry.files[0].digest
    refs[app] = BlobRef(app, sha256_digest(other), len(other))
    forged = dict(entry.files[0].as_json(), size=len(other))
    files = (OutputFile("bin/app", app, 0o755, forged["size"]), entry.files[1])
    art = encode(Entry(entry.key, entry.node, files, entry.log, 0, 0, {}), refs)
    for ref in refs.values():
        if ref.sha256 not in fake.blobs:
            fake.blobs[ref.sha256] = a.blob_path(ref.blake3).read_bytes()
    fake.blobs[art.config_digest] = art.config
    fake.manifests[tag_for(entry.key)] = art.manifest()
    warnings = Warnings()
    assert cache(fake, b, warnings).substitute(entry.key) is None
    assert "blake3" in warnings.text() and entry.key in warnings.text()


def test_missing_blob_behind_a_manifest_is_a_miss(
    fake: FakeRegistry, stores: tuple[Store, Store]
) -> None:
    a, b = stores
    entry = _pushed(fake, a)
    sha = _sha(a, entry.files[0].digest)
    del fake.blobs[sha]
    warnings = Warnings()
    rc = cache(fake, b, warnings)
    assert rc.substitute(entry.key) is None
    assert "incomplete" in warnings.text() and sha in warnings.text()
    assert rc.readable  # only this key is affected
    assert cache(fake, a).push(entry)  # and a push from a store holding it repairs it
    assert sha in fake.blobs


def test_corrupt_entry_json_is_a_miss(fake: FakeRegistry, stores: tuple[Store, Store]) -> None:
    a, b = stores
    entry = _pushed(fake, a)
    doc = json.loads(fake.manifests[tag_for(entry.key)])
    cfg = doc["config"]["digest"]
    fake.serve[cfg] = fake.blobs[cfg].replace(b"step1", b"step9")
    warnings = Warnings()
    assert cache(fake, b, warnings).substitute(entry.key) is None
    assert "corrupt" in warnings.text() and entry.key in warnings.text()


def test_foreign_manifest_under_the_tag_is_a_miss(
    fake: FakeRegistry, stores: tuple[Store, Store]
) -> None:
    fake.manifests[tag_for("aa" * 32)] = json.dumps({"mediaType": OCI_MANIFEST}).encode()
    warnings = Warnings()
    assert cache(fake, stores[1], warnings).substitute("aa" * 32) is None
    assert "not a crossplan action" in warnings.text()


def test_unreachable_warns_once_and_stops_asking(
    fake: FakeRegistry, stores: tuple[Store, Store]
) -> None:
    a, _ = stores
    fake.fail["ping"] = RegistryUnreachable("cannot reach registry fake.test:5000 (ping)")
    warnings = Warnings()
    rc = cache(fake, a, warnings)
    assert rc.lookup_many(["11" * 32, "22" * 32]) == {"11" * 32: None, "22" * 32: None}
    assert rc.substitute("33" * 32) is None
    assert rc.push(make_entry(a, 1)) is False
    assert len(warnings) == 1 and "unreachable" in warnings.text()
    assert fake.ops("get_manifest") == [] and fake.ops("upload_blob") == []
    assert not rc.readable and not rc.writable


def test_unreachable_mid_run_also_warns_once(
    fake: FakeRegistry, stores: tuple[Store, Store]
) -> None:
    fake.fail["get_manifest"] = RegistryUnreachable("cannot reach registry fake.test:5000")
    warnings = Warnings()
    rc = cache(fake, stores[0], warnings)
    rc.lookup_many([f"{n:064x}" for n in range(5)])
    rc.lookup_many(["ff" * 32])
    assert len(warnings) == 1 and not rc.readable


def test_auth_failure_says_how_to_log_in(fake: FakeRegistry, stores: tuple[Store, Store]) -> None:
    fake.fail["get_manifest"] = RegistryDenied("denied", status=401)
    warnings = Warnings()
    rc = cache(fake, stores[0], warnings)
    assert rc.lookup_many(["11" * 32, "22" * 32, "33" * 32]) == dict.fromkeys(
        ["11" * 32, "22" * 32, "33" * 32]
    )
    assert len(warnings) == 1
    text = warnings.text()
    assert "HTTP 401" in text and "docker login fake.test:5000" in text and REMOTE in text


def test_push_denied_keeps_reads_and_warns_once(
    fake: FakeRegistry, stores: tuple[Store, Store]
) -> None:
    a, b = stores
    entry = _pushed(fake, a)
    fake.fail["upload_blob"] = RegistryDenied("denied", status=403)
    warnings = Warnings()
    rc = cache(fake, a, warnings)
    assert rc.push(make_entry(a, 2)) is False
    assert rc.push(make_entry(a, 3)) is False
    assert len(warnings) == 1 and "denied pushes" in warnings.text()
    assert not rc.writable and rc.readable
    assert cache(fake, b).substitute(entry.key) == entry


def test_push_failure_keeps_the_local_result(
    fake: FakeRegistry, stores: tuple[Store, Store]
) -> None:
    a, _ = stores
    entry = make_entry(a, 1)
    fake.fail["put_manifest"] = RegistryError("PUT manifest failed with HTTP 500", status=500)
    warnings = Warnings()
    rc = cache(fake, a, warnings)
    assert rc.push(entry) is False
    assert "could not push" in warnings.text() and "local result is kept" in warnings.text()
    assert a.get(entry.key) == entry
    del fake.fail["put_manifest"]
    assert rc.push(make_entry(a, 2)) is False  # the registry failed: no more pushes this run
    assert len(warnings) == 1 and rc.readable and not rc.writable
    assert "not pushing for the rest of this run" in warnings.text()


def test_corrupt_local_blob_is_never_pushed(
    fake: FakeRegistry, stores: tuple[Store, Store]
) -> None:
    a, _ = stores
    entry = make_entry(a, 1)
    path = a.blob_path(entry.files[0].digest)
    path.chmod(0o644)
    path.write_bytes(b"rotten")
    warnings = Warnings()
    assert cache(fake, a, warnings).push(entry) is False
    assert "corrupt" in warnings.text() and fake.manifests == {}


def test_read_mode_never_writes(fake: FakeRegistry, stores: tuple[Store, Store]) -> None:
    a, _ = stores
    rc = cache(fake, a, mode="read")
    assert rc.push(make_entry(a, 1)) is False
    assert fake.calls == []


def test_remote_must_be_a_repository(stores: tuple[Store, Store]) -> None:
    with pytest.raises(RecipeError, match="without tag"):
        RemoteCache(RemoteSettings("localhost:5000/cache:latest"), stores[0])


# -- signatures ------------------------------------------------------------------------------

SIGNER = SigningKey.generate("ci-1")


def test_signed_entry_from_a_trusted_key_is_used(
    fake: FakeRegistry, stores: tuple[Store, Store]
) -> None:
    a, b = stores
    entry = _pushed(fake, a, signing_key=SIGNER)
    doc = json.loads(fake.manifests[tag_for(entry.key)])
    assert doc["annotations"]["dev.crossplan.signature"].startswith("ci-1:")
    got = cache(fake, b, trusted_keys=(SIGNER.public(),)).substitute(entry.key)
    assert got == entry


def test_unsigned_entry_is_refused_when_keys_are_trusted(
    fake: FakeRegistry, stores: tuple[Store, Store]
) -> None:
    a, b = stores
    entry = _pushed(fake, a)
    warnings = Warnings()
    rc = cache(fake, b, warnings, trusted_keys=(SIGNER.public(),))
    assert rc.substitute(entry.key) is None
    assert "unsigned" in warnings.text() and entry.key in warnings.text()
    assert fake.ops("get_blob") == []  # refused before downloading anything


def test_entry_signed_by_an_untrusted_key_is_refused(
    fake: FakeRegistry, stores: tuple[Store, Store]
) -> None:
    a, b = stores
    entry = _pushed(fake, a, signing_key=SigningKey.generate("ci-1"))  # same name, other key
    warnings = Warnings()
    assert cache(fake, b, warnings, trusted_keys=(SIGNER.public(),)).substitute(entry.key) is None
    assert "does not verify" in warnings.text()


def test_signature_does_not_carry_over_to_another_key(
    fake: FakeRegistry, stores: tuple[Store, Store]
) -> None:
    """Re-tagging a signed artifact under another action key is refused."""
    a, b = stores
    entry = _pushed(fake, a, signing_key=SIGNER)
    other = "ee" * 32
    doc = json.loads(fake.manifests[tag_for(entry.key)])
    doc["annotations"]["dev.crossplan.key"] = other
    fake.manifests[tag_for(other)] = json.dumps(doc).encode()
    warnings = Warnings()
    assert cache(fake, b, warnings, trusted_keys=(SIGNER.public(),)).substitute(other) is None
    assert "does not verify" in warnings.text()
