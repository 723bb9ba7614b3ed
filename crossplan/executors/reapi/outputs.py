"""A REAPI ActionResult's outputs (files, directory Trees, symlinks) and logs fetched into the
local store as crossplan OutputFiles, every blob checked against its SHA-256."""

from __future__ import annotations

import posixpath

from crossplan.cache.store import OutputFile, Store
from crossplan.errors import StepFailed
from crossplan.executors.reapi.cas import Cas
from crossplan.executors.reapi.command import WORK
from crossplan.executors.reapi.tree import DigestMap, digest_of
from crossplan_protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

__all__ = ["fetch_log", "fetch_outputs"]


class _Fetcher:
    def __init__(self, cas: Cas, store: Store, digests: DigestMap) -> None:
        self.cas, self.store, self.digests = cas, store, digests
        self.files: list[OutputFile] = []

    def rel(self, path: str) -> str:
        prefix = WORK + "/"
        return path[len(prefix):] if path.startswith(prefix) else path

    def file(self, path: str, digest: re_pb2.Digest, executable: bool) -> None:
        data = self.cas.read(digest)
        b3 = self.store.put_bytes(data)
        self.digests.put(b3, digest)
        self.files.append(OutputFile(path, b3, 0o755 if executable else 0o644, len(data)))

    def link(self, path: str, target: str) -> None:
        b3 = self.store.put_bytes(target.encode())
        self.files.append(OutputFile(path, b3, 0o777, 0, target))

    def tree(self, path: str, tree_digest: re_pb2.Digest) -> None:
        tree = re_pb2.Tree()
        tree.ParseFromString(self.cas.read(tree_digest))
        children = {digest_of(c.SerializeToString(deterministic=True)).hash: c
                    for c in tree.children}
        self._dir(path, tree.root, children)

    def _dir(self, path: str, d: re_pb2.Directory, children: dict[str, re_pb2.Directory]) -> None:
        for f in d.files:
            self.file(posixpath.join(path, f.name), f.digest, f.is_executable)
        for s in d.symlinks:
            self.link(posixpath.join(path, s.name), s.target)
        for sub in d.directories:
            child = children.get(sub.digest.hash)
            if child is None:  # a Tree's children are keyed by their own digest
                child = re_pb2.Directory()
                child.ParseFromString(self.cas.read(sub.digest))
            self._dir(posixpath.join(path, sub.name), child, children)


def fetch_outputs(
    result: re_pb2.ActionResult, outputs: tuple[str, ...], cas: Cas, store: Store,
    digests: DigestMap, *, step: str,
) -> tuple[OutputFile, ...]:
    """Every output of ``result`` into ``store``; a declared output the action did not
    produce is a failure, as locally."""
    f = _Fetcher(cas, store, digests)
    produced: set[str] = set()
    for of in result.output_files:
        f.file(f.rel(of.path), of.digest, of.is_executable)
        produced.add(f.rel(of.path))
    for link in (*result.output_symlinks, *result.output_file_symlinks,
                 *result.output_directory_symlinks):
        if f.rel(link.path) not in produced:
            f.link(f.rel(link.path), link.target)
            produced.add(f.rel(link.path))
    for od in result.output_directories:
        f.tree(f.rel(od.path), od.tree_digest)
        produced.add(f.rel(od.path))
    for out in outputs:
        if posixpath.normpath(out) not in produced:
            raise StepFailed(
                f"exited 0 but did not produce declared output '{out}'", step=step,
                hint="make the command write it, or fix `outputs`")
    return tuple(sorted(f.files, key=lambda o: o.path))


def fetch_log(result: re_pb2.ActionResult, cas: Cas) -> bytes:
    """The action's stdout then stderr (inlined or from the CAS)."""
    parts = []
    for raw, digest in ((result.stdout_raw, result.stdout_digest),
                        (result.stderr_raw, result.stderr_digest)):
        if raw:
            parts.append(raw)
        elif digest.hash:
            parts.append(cas.read(digest))
    return b"".join(parts)
