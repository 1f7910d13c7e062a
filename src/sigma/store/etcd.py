"""The store contract on etcd 3.4, for several masters sharing one cluster state.

Mapping (see contract.py for what each call promises):

- The store revision is etcd's header revision, and a key's create/mod revisions are
  etcd's, each less one: etcd starts at revision 1 with nothing written, the contract at 0.
- ``create`` is a Txn "create_revision(key) == 0 → put"; ``update``/``delete`` are Txns
  "version(key) > 0 [and mod_revision(key) == expected] → put/delete". On failure the Txn
  reads the key back, which tells KeyNotFound from Conflict. A failed Txn writes nothing, so
  it consumes no revision, as the contract requires.
- ``list`` pages through a prefix at the revision of its first page: one consistent read.
- ``watch`` subscribes to an etcd watch stream shared by every watch on the prefix in this
  process (etcd_fanout.py, etcd_watch.py).
- ``get_many`` is one Txn of range requests; ``update_many`` sends one Txn per write, all in
  flight at once.
- ``compact`` is etcd's compaction; ``compacted_revision`` is found by probing, because
  etcd reports it only as an error on reads below it (see there).

Transport: etcd's native gRPC API (etcd_rpc.py), over an HTTP/2 client of our own
(etcd_grpc.py); the leader election (sigma.master.leader) uses ``self.rpc`` for its lease.

Fencing: ``fenced(key, create_revision)`` returns a view of this store whose writes also
compare that ``key`` still has that ``create_revision``. The master's leader key is created
with its lease, so it keeps one create_revision for exactly one term of leadership; when the
lease expires or another master wins, every fenced write fails with ``Fenced``. Only the
controllers write through the fenced view; API writes from clients need no leadership.
"""

from __future__ import annotations

import builtins
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sigma.store import etcd_pb as pb
from sigma.store.contract import (
    Conflict,
    Deletes,
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionCompacted,
    Route,
    Store,
    StoreClosed,
    StoreError,
    Watch,
    WriteResults,
    Writes,
)
from sigma.store.etcd_fanout import LINGER_S, Feed
from sigma.store.etcd_rpc import (
    COMPACT,
    COMPACTED,
    FUTURE_REVISION,
    RANGE,
    TXN,
    EtcdError,
    Rpc,
    prefix_range_end,
    rev_in,
    rev_out,
)
from sigma.store.etcd_watch import IDLE_TIMEOUT_S, EtcdWatch, to_kv

log = logging.getLogger("sigma.store.etcd")
LIST_PAGE = 1000
# etcd's default --max-txn-ops: the most operations one Txn may carry.
TXN_OPS = 128
# A key no one writes: reads of it cost nothing and still carry the header revision.
_PROBE_KEY = b"\0sigma-probe"


class Fenced(StoreError):
    """A fenced write was refused: the term of leadership it was made under has ended."""


@dataclass(frozen=True, slots=True)
class Guard:
    key: str
    create_revision: int  # etcd's own numbering, as leader.py reads it (no rev_out shift)


def _read_keys_only(ops: Any, key: bytes) -> None:
    """Append to a Txn's ops a keys-only read of ``key`` (field by field: building a
    message and merging it costs twice as much)."""
    read = ops.add().request_range
    read.key = key
    read.keys_only = True


def _put(ops: Any, key: bytes, value: bytes) -> None:
    put = ops.add().request_put
    put.key = key
    put.value = value


def _probe(revision: int = 0) -> Any:
    return pb.RangeRequest(key=_PROBE_KEY, count_only=True, revision=revision)


class EtcdStore(Store):
    def __init__(self, endpoints: list[str], watch_idle_timeout: float = IDLE_TIMEOUT_S) -> None:
        self.rpc = Rpc(endpoints)
        # A watch that hears nothing from etcd for this long checks etcd is alive, and ends
        # with StoreUnavailable if not (see etcd_watch.py).
        self.watch_idle_timeout = watch_idle_timeout
        self._closed = False
        self._lock = threading.Lock()
        # Watches share one etcd stream per prefix (etcd_fanout.py): the shared feeds by
        # prefix, and every feed (shared or not) so that close() ends them all.
        self._feeds: dict[str, Feed] = {}
        self._all_feeds: set[Feed] = set()
        self._compacted_hint = 0  # compaction only moves up: the probe starts here

    @classmethod
    def from_url(cls, url: str) -> EtcdStore:
        """``etcd://host:port[,host:port...]``"""
        hosts = url.removeprefix("etcd://").strip("/")
        return cls([h for h in hosts.split(",") if h])

    def fenced(self, key: str, create_revision: int) -> Store:
        return FencedStore(self, Guard(key, create_revision))

    # -- reads ---------------------------------------------------------------------
    def get(self, key: str) -> KeyValue | None:
        kvs = self.rpc.one(RANGE, pb.RangeRequest(key=key.encode()), pb.RangeResponse, idempotent=True).kvs
        return to_kv(kvs[0]) if kvs else None

    def list(self, prefix: str) -> tuple[builtins.list[KeyValue], int]:
        start = prefix.encode() if prefix else b"\0"
        end = prefix_range_end(prefix.encode()) if prefix else b"\0"
        items: builtins.list[KeyValue] = []
        revision = 0
        while True:
            # Later pages read the first page's snapshot (revision 0 is "now").
            request = pb.RangeRequest(key=start, range_end=end, limit=LIST_PAGE, revision=revision)
            answer = self.rpc.one(RANGE, request, pb.RangeResponse, idempotent=True)
            revision = revision or answer.header.revision  # etcd's own numbering
            page = [to_kv(kv) for kv in answer.kvs]
            items.extend(page)
            if not answer.more or not page:
                return items, rev_out(revision)
            start = page[-1].key.encode() + b"\0"

    def current_revision(self) -> int:
        return rev_out(self.rpc.one(RANGE, _probe(), pb.RangeResponse, idempotent=True).header.revision)

    def _readable_at(self, revision: int) -> bool:
        """False when ``revision`` is below etcd's compaction point."""
        try:
            self.rpc.one(RANGE, _probe(rev_in(revision)), pb.RangeResponse, idempotent=True)
        except EtcdError as err:
            if COMPACTED in err.message:
                return False
            if FUTURE_REVISION in err.message:
                return True
            raise
        return True

    def compacted_revision(self) -> int:
        # etcd has no call that returns the compaction point, but a read at a revision below
        # it fails: binary-search the lowest readable revision (about 20 reads at most, and
        # the master asks once a minute).
        low, high = self._compacted_hint, self.current_revision()
        while low < high:
            middle = (low + high) // 2
            if self._readable_at(middle):
                high = middle
            else:
                low = middle + 1
        self._compacted_hint = max(self._compacted_hint, low)
        return self._compacted_hint

    # -- writes --------------------------------------------------------------------
    def create(self, key: str, value: bytes) -> KeyValue:
        return self._create(key, value, None)

    def update(self, key: str, value: bytes, expected_revision: int | None = None) -> KeyValue:
        return self._update(key, value, expected_revision, None)

    def delete(self, key: str, expected_revision: int | None = None) -> KeyValue:
        return self._delete(key, expected_revision, None)

    @staticmethod
    def _txn(key: bytes, guard: Guard | None) -> Any:
        """A Txn whose failure branch reads ``key`` back (keys only: the revisions tell
        KeyNotFound from Conflict, the value is not needed) and, when fenced, the guard's
        key; compare and success are the caller's to add."""
        txn = pb.TxnRequest()
        _read_keys_only(txn.failure, key)
        if guard is not None:
            guard_key = guard.key.encode()
            txn.compare.add(key=guard_key, target=pb.CREATE, result=pb.EQUAL, create_revision=guard.create_revision)
            _read_keys_only(txn.failure, guard_key)
        return txn

    @staticmethod
    def _txn_outcome(key: str, answer: Any, guard: Guard | None) -> bool:
        """Whether the Txn succeeded; raises Fenced when it failed on the guard."""
        if answer.succeeded:
            return True
        if guard is not None:
            leader = answer.responses[1].response_range.kvs
            if not leader or leader[0].create_revision != guard.create_revision:
                log.warning("fenced write to %s refused: leadership term %d has ended", key, guard.create_revision)
                raise Fenced(f"write to {key} refused: the leadership term {guard.create_revision} has ended")
        return False

    def _create(self, key: str, value: bytes, guard: Guard | None) -> KeyValue:
        raw = key.encode()
        txn = self._txn(raw, guard)
        txn.compare.add(key=raw, target=pb.CREATE, result=pb.EQUAL, create_revision=0)
        _put(txn.success, raw, value)
        answer = self.rpc.one(TXN, txn, pb.TxnResponse)
        if not self._txn_outcome(key, answer, guard):
            raise KeyExists(key)
        revision = rev_out(answer.header.revision)
        return KeyValue(key, value, revision, revision)

    def _write_txn(self, key: str, expected_revision: int | None, guard: Guard | None) -> Any:
        """A Txn on an existing ``key`` (at ``expected_revision`` if given); the caller adds
        the write."""
        raw = key.encode()
        txn = self._txn(raw, guard)
        txn.compare.add(key=raw, target=pb.VERSION, result=pb.GREATER, version=0)
        if expected_revision is not None:
            txn.compare.add(key=raw, target=pb.MOD, result=pb.EQUAL, mod_revision=rev_in(expected_revision))
        return txn

    def _update_txn(self, key: str, value: bytes, expected_revision: int | None, guard: Guard | None) -> Any:
        # The key's create_revision comes from a keys-only read after the put, not from
        # prev_kv: prev_kv would send the whole old value back.
        raw = key.encode()
        txn = self._write_txn(key, expected_revision, guard)
        _put(txn.success, raw, value)
        _read_keys_only(txn.success, raw)
        return txn

    def _refused(self, key: str, expected_revision: int | None, answer: Any) -> StoreError:
        kvs = answer.responses[0].response_range.kvs if answer.responses else []
        if not kvs:
            return KeyNotFound(key)
        return Conflict(key, expected_revision or 0, rev_out(kvs[0].mod_revision))

    def _update(self, key: str, value: bytes, expected_revision: int | None, guard: Guard | None) -> KeyValue:
        answer = self.rpc.one(TXN, self._update_txn(key, value, expected_revision, guard), pb.TxnResponse)
        return self._updated(key, value, expected_revision, self._txn_outcome(key, answer, guard), answer)

    def _updated(self, key: str, value: bytes, expected_revision: int | None, ok: bool, answer: Any) -> KeyValue:
        if not ok:
            raise self._refused(key, expected_revision, answer)
        written = answer.responses[1].response_range.kvs[0]
        return KeyValue(key, value, rev_out(written.create_revision), rev_out(answer.header.revision))

    def _update_many(self, writes: Writes, guard: Guard | None) -> WriteResults:
        """One Txn per write, as ``update`` sends it, so each write takes its own revision
        (a watch resuming from one object's resourceVersion must not skip another object
        written at the same revision: one Txn for the batch would give them all one). The
        writes are independent, so the Txns are all in flight at once (etcd_grpc's
        call_many): the batch waits for a few raft commits, not one per write."""
        txns = [self._update_txn(key, value, expected, guard) for key, value, expected in writes]
        answers = self.rpc.many(TXN, txns, pb.TxnResponse)
        return self._batch_results(
            answers, [w[0] for w in writes],
            [functools.partial(self._updated, key, value, expected) for key, value, expected in writes], guard)

    def update_many(self, writes: Writes) -> WriteResults:
        return self._update_many(writes, None)

    def get_many(self, keys: Sequence[str]) -> builtins.list[KeyValue | None]:
        # One Txn of range requests per TXN_OPS keys (etcd's --max-txn-ops): one snapshot
        # and one round trip for a scheduler's batch of bindings.
        txns = []
        for first in range(0, len(keys), TXN_OPS):
            txn = pb.TxnRequest()
            for key in keys[first:first + TXN_OPS]:
                txn.success.add().request_range.key = key.encode()
            txns.append(txn)
        out: builtins.list[KeyValue | None] = []
        for answer in self.rpc.many(TXN, txns, pb.TxnResponse, idempotent=True):
            if isinstance(answer, StoreError):
                raise answer
            for response in answer.responses:
                kvs = response.response_range.kvs
                out.append(to_kv(kvs[0]) if kvs else None)
        return out

    def _delete_txn(self, key: str, expected_revision: int | None, guard: Guard | None) -> Any:
        txn = self._write_txn(key, expected_revision, guard)
        txn.success.add().request_delete_range.MergeFrom(pb.DeleteRangeRequest(key=key.encode(), prev_kv=True))
        return txn

    def _deleted(self, key: str, expected_revision: int | None, ok: bool, answer: Any) -> KeyValue:
        if not ok:
            raise self._refused(key, expected_revision, answer)
        prev = to_kv(answer.responses[0].response_delete_range.prev_kvs[0])
        return KeyValue(key, prev.value, prev.create_revision, rev_out(answer.header.revision))

    def _delete(self, key: str, expected_revision: int | None, guard: Guard | None) -> KeyValue:
        answer = self.rpc.one(TXN, self._delete_txn(key, expected_revision, guard), pb.TxnResponse)
        return self._deleted(key, expected_revision, self._txn_outcome(key, answer, guard), answer)

    def _delete_many(self, deletes: Deletes, guard: Guard | None) -> WriteResults:
        """One Txn per delete, all in flight at once, as _update_many does (each delete keeps
        its own revision)."""
        answers = self.rpc.many(TXN, [self._delete_txn(key, expected, guard) for key, expected in deletes],
                                pb.TxnResponse)
        return self._batch_results(
            answers, [d[0] for d in deletes],
            [functools.partial(self._deleted, key, expected) for key, expected in deletes], guard)

    def _batch_results(self, answers: builtins.list[Any], keys: builtins.list[str],
                       outcomes: builtins.list[Callable[[bool, Any], KeyValue]], guard: Guard | None) -> WriteResults:
        """The results of a batch of Txns sent at once, one per write: each KeyValue, or the
        KeyNotFound/Conflict it met. A Fenced write means the term ended during the batch: the
        writes from then on were refused (those before landed), and the caller hears it as it
        would from a loop of single writes."""
        results: WriteResults = []
        fenced: Fenced | None = None
        for key, outcome, answer in zip(keys, outcomes, answers, strict=True):
            if isinstance(answer, StoreError):
                raise answer
            try:
                results.append(outcome(self._txn_outcome(key, answer, guard), answer))
            except (KeyNotFound, Conflict) as err:
                results.append(err)
            except Fenced as err:
                fenced = fenced or err
        if fenced is not None:
            raise fenced
        return results

    def delete_many(self, deletes: Deletes) -> WriteResults:
        return self._delete_many(deletes, None)

    # -- watch and compaction ------------------------------------------------------
    def watch(self, prefix: str, start_revision: int, route: Route | None = None) -> Watch:
        # Refuse a compacted start now, as the contract says; a compaction racing with the
        # stream's creation still reaches the consumer, as the watch's error.
        if not self._readable_at(start_revision):
            raise RevisionCompacted(start_revision, self.compacted_revision())
        with self._lock:
            if self._closed:
                raise StoreClosed("store closed")
            # The feed of the longest registered prefix that contains this one.
            shared = [f for p, f in self._feeds.items() if prefix.startswith(p)]
            feed = max(shared, key=lambda f: len(f.prefix), default=None)
        if feed is not None:
            watch = feed.subscribe(prefix, start_revision, route)
            if watch is not None:
                return watch
        return self._open_feed(prefix, start_revision, route)

    def _open_feed(self, prefix: str, start_revision: int, route: Route | None) -> Watch:
        """A new etcd stream from ``start_revision``, shared from now on unless a feed for
        this prefix is registered already (this one then serves its one watch only)."""
        with self._lock:
            registered = self._feeds.get(prefix)
            shared = registered is None or registered.ended
        feed = Feed(prefix, start_revision, on_idle=self._retire, linger=LINGER_S if shared else 0)
        watch = feed.subscribe(prefix, start_revision, route)
        assert watch is not None  # a fresh feed holds everything after its start
        key = prefix.encode() if prefix else b"\0"
        end = prefix_range_end(prefix.encode()) if prefix else b"\0"
        stream = EtcdWatch(self.rpc, feed, key, end, start_revision, on_end=lambda _s: None,
                           idle_timeout=self.watch_idle_timeout, track_values=True)
        feed.stopper = stream.stop
        with self._lock:
            if self._closed:
                raise StoreClosed("store closed")
            registered = self._feeds.get(prefix)
            if shared and (registered is None or registered.ended):
                self._feeds[prefix] = feed
            self._all_feeds.add(feed)
        stream.start()
        return watch

    def _retire(self, feed: Feed) -> None:
        """A feed ended (its stream failed, or nobody listened for a while): unregister it
        and stop its stream."""
        with self._lock:
            if self._feeds.get(feed.prefix) is feed:
                del self._feeds[feed.prefix]
            self._all_feeds.discard(feed)
        feed.stopper()

    def compact(self, revision: int) -> None:
        if revision > self.current_revision():
            raise ValueError(f"cannot compact to {revision}: the store is at {self.current_revision()}")
        try:
            self.rpc.one(COMPACT, pb.CompactionRequest(revision=rev_in(revision), physical=True),
                         pb.CompactionResponse)
        except EtcdError as err:
            if COMPACTED not in err.message:  # already compacted there or beyond: a no-op
                raise
            return
        self._compacted_hint = max(self._compacted_hint, revision)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            feeds = list(self._all_feeds)
        for feed in feeds:
            feed.end(StoreClosed("store closed"))
        self.rpc.close()


class FencedStore(Store):
    """Reads and watches of the underlying store; writes only while the guard holds."""

    def __init__(self, base: EtcdStore, guard: Guard) -> None:
        self.base = base
        self.guard = guard

    def get(self, key: str) -> KeyValue | None:
        return self.base.get(key)

    def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        return self.base.list(prefix)

    def create(self, key: str, value: bytes) -> KeyValue:
        return self.base._create(key, value, self.guard)

    def update(self, key: str, value: bytes, expected_revision: int | None = None) -> KeyValue:
        return self.base._update(key, value, expected_revision, self.guard)

    def delete(self, key: str, expected_revision: int | None = None) -> KeyValue:
        return self.base._delete(key, expected_revision, self.guard)

    def get_many(self, keys: Sequence[str]) -> builtins.list[KeyValue | None]:
        return self.base.get_many(keys)

    def update_many(self, writes: Writes) -> WriteResults:
        return self.base._update_many(writes, self.guard)

    def delete_many(self, deletes: Deletes) -> WriteResults:
        return self.base._delete_many(deletes, self.guard)

    def watch(self, prefix: str, start_revision: int, route: Route | None = None) -> Watch:
        return self.base.watch(prefix, start_revision, route)

    def compact(self, revision: int) -> None:
        self.base.compact(revision)

    def current_revision(self) -> int:
        return self.base.current_revision()

    def compacted_revision(self) -> int:
        return self.base.compacted_revision()

    def close(self) -> None:
        """The view owns nothing: the master closes the underlying store."""
