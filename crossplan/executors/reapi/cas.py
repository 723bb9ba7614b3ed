"""The CAS side of REAPI: server capabilities, FindMissingBlobs, uploads (BatchUpdateBlobs for
small blobs, ByteStream.Write for large ones), downloads checked against their SHA-256."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator
from functools import partial

import grpc

from crossplan.errors import EnvironmentProblem
from crossplan.executors.reapi.channel import Endpoint, Retrying
from crossplan.executors.reapi.tree import Blob
from crossplan_protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from crossplan_protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from crossplan_protos.google.bytestream import bytestream_pb2 as bs_pb2
from crossplan_protos.google.bytestream import bytestream_pb2_grpc as bs_grpc

__all__ = ["Cas", "CorruptBlob"]

_BATCH = 2 << 20  # below the usual 4 MiB message limit, with room for the envelope
_CHUNK = 1 << 20
_SHA256 = re_pb2.DigestFunction.SHA256


class CorruptBlob(Exception):
    """A downloaded blob's bytes do not hash to its digest."""


class Cas:
    def __init__(self, channel: grpc.Channel, ep: Endpoint, retry: Retrying) -> None:
        self.ep = ep
        self.retry = retry
        self.cas = re_grpc.ContentAddressableStorageStub(channel)
        self.caps = re_grpc.CapabilitiesStub(channel)
        self.bs = bs_grpc.ByteStreamStub(channel)
        self.batch_limit = _BATCH

    def check_capabilities(self) -> None:
        """The server must execute, and hash with SHA-256: else a clear exit 3."""
        req = re_pb2.GetCapabilitiesRequest(instance_name=self.ep.instance)
        try:
            caps = self.retry(lambda: self.caps.GetCapabilities(req, timeout=10))
        except grpc.RpcError as exc:
            raise EnvironmentProblem(
                f"{self.ep.url}: GetCapabilities failed: {exc.code().name}: {exc.details()}",
                hint="check [execution] remote and instance (the instance name must exist "
                "on the server)") from None
        missing = []
        if not caps.execution_capabilities.exec_enabled:
            missing.append("remote execution (exec_enabled is false)")
        fns = set(caps.cache_capabilities.digest_functions)
        if caps.execution_capabilities.digest_function:
            fns.add(caps.execution_capabilities.digest_function)
        if _SHA256 not in fns:
            missing.append("the SHA-256 digest function")
        if missing:
            raise EnvironmentProblem(
                f"{self.ep.url} instance '{self.ep.instance}' lacks " + " and ".join(missing),
                hint="point [execution] remote at an REAPI v2 server with execution enabled")
        limit = caps.cache_capabilities.max_batch_total_size_bytes
        if limit:
            self.batch_limit = min(_BATCH, max(limit - (64 << 10), 64 << 10))

    def find_missing(self, digests: Iterable[re_pb2.Digest]) -> list[re_pb2.Digest]:
        ds = list(digests)
        out: list[re_pb2.Digest] = []
        for i in range(0, len(ds), 5000):
            req = re_pb2.FindMissingBlobsRequest(instance_name=self.ep.instance,
                                                 blob_digests=ds[i:i + 5000])
            resp = self.retry(partial(self.cas.FindMissingBlobs, req, timeout=60))
            out.extend(resp.missing_blob_digests)
        return out

    def upload(self, blobs: Iterable[Blob]) -> int:
        """Send the blobs; returns the bytes sent."""
        sent = 0
        batch: list[re_pb2.BatchUpdateBlobsRequest.Request] = []
        size = 0
        for blob in blobs:
            n = blob.digest.size_bytes
            if n > self.batch_limit:
                self._write(blob)
                sent += n
                continue
            if size + n > self.batch_limit and batch:
                self._batch(batch)
                batch, size = [], 0
            batch.append(re_pb2.BatchUpdateBlobsRequest.Request(digest=blob.digest,
                                                                data=blob.read()))
            size += n
            sent += n
        if batch:
            self._batch(batch)
        return sent

    def _batch(self, reqs: list[re_pb2.BatchUpdateBlobsRequest.Request]) -> None:
        req = re_pb2.BatchUpdateBlobsRequest(instance_name=self.ep.instance, requests=reqs)
        resp = self.retry(lambda: self.cas.BatchUpdateBlobs(req, timeout=120))
        bad = [r for r in resp.responses if r.status.code != 0]
        if bad:
            r = bad[0]
            raise EnvironmentProblem(
                f"{self.ep.url}: uploading {r.digest.hash[:12]} failed: {r.status.message}",
                hint="the remote CAS refused a blob; check its storage and quotas")

    def _write(self, blob: Blob) -> None:
        name = "/".join(p for p in (self.ep.instance, "uploads", str(uuid.uuid4()), "blobs",
                                    blob.digest.hash, str(blob.digest.size_bytes)) if p)

        def chunks() -> Iterator[bs_pb2.WriteRequest]:
            data = blob.read()
            offset = 0
            while True:
                piece = data[offset:offset + _CHUNK]
                last = offset + len(piece) >= len(data)
                yield bs_pb2.WriteRequest(resource_name=name if offset == 0 else "",
                                          write_offset=offset, finish_write=last, data=piece)
                offset += len(piece)
                if last:
                    return

        self.retry(lambda: self.bs.Write(chunks(), timeout=600))

    def read(self, digest: re_pb2.Digest) -> bytes:
        """A blob's bytes, verified against its SHA-256 (ByteStream for large ones)."""
        if digest.size_bytes == 0:
            data = b""
        elif digest.size_bytes <= self.batch_limit:
            req = re_pb2.BatchReadBlobsRequest(instance_name=self.ep.instance, digests=[digest])
            resp = self.retry(lambda: self.cas.BatchReadBlobs(req, timeout=120))
            r = resp.responses[0]
            if r.status.code != 0:
                raise CorruptBlob(f"{digest.hash[:12]}: {r.status.message}")
            data = r.data
        else:
            name = "/".join(p for p in (self.ep.instance, "blobs", digest.hash,
                                        str(digest.size_bytes)) if p)
            req2 = bs_pb2.ReadRequest(resource_name=name)
            data = self.retry(lambda: b"".join(
                r.data for r in self.bs.Read(req2, timeout=600)))
        if hashlib.sha256(data).hexdigest() != digest.hash or len(data) != digest.size_bytes:
            raise CorruptBlob(f"blob {digest.hash[:12]} does not match its digest")
        return data
