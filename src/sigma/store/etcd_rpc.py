"""etcd's v3 API as protobuf messages (etcd_pb.py) over our HTTP/2 gRPC channel
(etcd_grpc.py), with etcd's refusals and transport failures turned into the store's errors;
and the few conventions every etcd module shares (revisions, prefixes, error texts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from sigma.store.contract import StorageFull, StoreClosed, StoreError, StoreUnavailable
from sigma.store.etcd_grpc import Broken, Call, Channel, Connection, NotSent, Status

RANGE = "/etcdserverpb.KV/Range"
TXN = "/etcdserverpb.KV/Txn"
COMPACT = "/etcdserverpb.KV/Compact"
WATCH = "/etcdserverpb.Watch/Watch"
LEASE_GRANT = "/etcdserverpb.Lease/LeaseGrant"
LEASE_REVOKE = "/etcdserverpb.Lease/LeaseRevoke"
LEASE_KEEPALIVE = "/etcdserverpb.Lease/LeaseKeepAlive"

# etcd's error texts that callers tell apart.
COMPACTED = "required revision has been compacted"
FUTURE_REVISION = "required revision is a future revision"
# etcd's NOSPACE alarm: its backend reached --quota-backend-bytes and it refuses every write
# (reads still work) until compacted, defragmented and disarmed.
SPACE_EXCEEDED = "database space exceeded"
# Calls are small and etcd answers them in milliseconds on a healthy cluster; a stuck call
# should fail over rather than hang a controller.
CALL_TIMEOUT_S = 10.0


class EtcdError(StoreError):
    """etcd refused a request; ``code`` is the gRPC status code."""

    def __init__(self, path: str, code: int, message: str) -> None:
        super().__init__(f"etcd {path}: {message} (code {code})")
        self.code = code
        self.message = message


# etcd's revision 1 is the empty keyspace it starts with; the contract counts writes from 0
# (revision N is the Nth write), so every revision crossing into the store shifts by one.
# Without the shift a watch "from revision 0" would expect an event at etcd's revision 1.
def rev_out(etcd_revision: int) -> int:
    return max(etcd_revision - 1, 0)


def rev_in(revision: int) -> int:
    return revision + 1


def prefix_range_end(prefix: bytes) -> bytes:
    """etcd's range end for "every key starting with prefix": the prefix with its last byte
    incremented (trailing 0xff bytes dropped). b"\\0" means "no upper bound"."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


def address(endpoint: str) -> tuple[str, int]:
    """``host:port`` or ``http://host:port`` (etcd's client URL) as (host, port)."""
    parts = urlsplit(endpoint if "//" in endpoint else f"http://{endpoint}")
    if parts.scheme not in ("http", ""):
        raise ValueError(f"etcd endpoint {endpoint!r}: only plain http is supported")
    try:
        port = parts.port or 2379
    except ValueError as err:
        raise ValueError(f"etcd endpoint {endpoint!r}: {err}") from None
    if not parts.hostname:
        raise ValueError(f"etcd endpoint {endpoint!r} has no host")
    return parts.hostname, port


def refusal(path: str, status: Status) -> StoreError:
    if SPACE_EXCEEDED in status.message:
        return StorageFull(f"etcd {path}: {status.message}: nothing was written; etcd needs compaction, "
                           "defragmentation and its NOSPACE alarm disarmed")
    return EtcdError(path, status.code, status.message)


class Rpc:
    def __init__(self, endpoints: Sequence[str]) -> None:
        if not endpoints:
            raise ValueError("etcd needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.channel = Channel([address(e) for e in endpoints])
        self._closed = False

    def many(self, path: str, requests: Sequence[Any], response: Any, *, idempotent: bool = False,
             timeout: float | None = None) -> list[Any]:
        """Each request's answer (a ``response`` message) or, where etcd refused it, the
        StoreError in its place. Raises StoreUnavailable when etcd could not be reached or
        the connection failed: then the writes may have been applied, and the message says so."""
        if self._closed:
            raise StoreClosed("store closed")
        try:
            results = self.channel.call_many(path, [r.SerializeToString() for r in requests],
                                             idempotent=idempotent,
                                             timeout=CALL_TIMEOUT_S if timeout is None else timeout)
        except NotSent as err:
            if self._closed:
                raise StoreClosed("store closed") from err
            raise StoreUnavailable(f"etcd {path}: {err}") from err
        except Broken as err:
            if self._closed:
                raise StoreClosed("store closed") from err
            applied = "" if idempotent else " (the write may have been applied)"
            raise StoreUnavailable(f"etcd {path}: {err}{applied}") from err
        out: list[Any] = []
        for result in results:
            if isinstance(result, Status):
                out.append(refusal(path, result))
            elif len(result) != 1:
                out.append(EtcdError(path, -1, f"{len(result)} answers to one unary call"))
            else:
                out.append(response.FromString(result[0]))
        return out

    def one(self, path: str, request: Any, response: Any, *, idempotent: bool = False,
            timeout: float | None = None) -> Any:
        answer = self.many(path, [request], response, idempotent=idempotent, timeout=timeout)[0]
        if isinstance(answer, StoreError):
            raise answer
        return answer

    def open_stream(self, path: str, request: Any) -> tuple[Connection, Call]:
        """Raises NotSent when no endpoint accepted the stream."""
        if self._closed:
            raise StoreClosed("store closed")
        return self.channel.open_stream(path, request.SerializeToString(), CALL_TIMEOUT_S)

    def close(self) -> None:
        self._closed = True
        self.channel.close()
