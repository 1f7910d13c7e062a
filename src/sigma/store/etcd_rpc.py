"""etcd's KV and Watch calls as protobuf messages over etcd_grpc's channel, with etcd's
refusals and transport failures turned into the store's errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sigma.store.contract import StorageFull, StoreClosed, StoreError, StoreUnavailable
from sigma.store.etcd_gateway import CALL_TIMEOUT_S, SPACE_EXCEEDED, EtcdError
from sigma.store.etcd_grpc import Broken, Call, Channel, Connection, NotSent, Status

RANGE = "/etcdserverpb.KV/Range"
TXN = "/etcdserverpb.KV/Txn"
COMPACT = "/etcdserverpb.KV/Compact"
WATCH = "/etcdserverpb.Watch/Watch"


def refusal(path: str, status: Status) -> StoreError:
    if SPACE_EXCEEDED in status.message:
        return StorageFull(f"etcd {path}: {status.message}: nothing was written; etcd needs compaction, "
                           "defragmentation and its NOSPACE alarm disarmed")
    return EtcdError(path, status.code, status.message)


class Rpc:
    def __init__(self, addresses: Sequence[tuple[str, int]]) -> None:
        self.channel = Channel(addresses)
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
