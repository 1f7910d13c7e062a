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
- ``get_many`` is one Txn of range requests; ``update_many`` pipelines one Txn per write.
- ``compact`` is etcd's compaction; ``compacted_revision`` is found by probing, because
  etcd reports it only as an error on reads below it (see there).

Fencing: ``fenced(key, create_revision)`` returns a view of this store whose writes also
compare that ``key`` still has that ``create_revision``. The master's leader key is created
with its lease, so it keeps one create_revision for exactly one term of leadership; when the
lease expires or another master wins, every fenced write fails with ``Fenced``. Only the
controllers write through the fenced view; API writes from clients need no leadership.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from sigma.store.contract import (
    Conflict,
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionCompacted,
    Store,
    StoreClosed,
    StoreError,
    Watch,
    WriteResults,
    Writes,
)
from sigma.store.etcd_fanout import LINGER_S, Feed
from sigma.store.etcd_gateway import (
    COMPACTED,
    FUTURE_REVISION,
    EtcdError,
    Gateway,
    Json,
    b64,
    num,
    prefix_range_end,
    rev_in,
    rev_out,
)
from sigma.store.etcd_watch import IDLE_TIMEOUT_S, EtcdWatch, to_kv

log = logging.getLogger("sigma.store.etcd")
LIST_PAGE = 1000
# etcd's default --max-txn-ops: the most operations one Txn may carry.
TXN_OPS = 128
# Spelled out here because inside EtcdStore the name ``list`` is the list() method.
_Compares = list[Json]
# A key no one writes: reads of it cost nothing and still carry the header revision.
_PROBE_KEY = b64(b"\0sigma-probe")


class Fenced(StoreError):
    """A fenced write was refused: the term of leadership it was made under has ended."""


@dataclass(frozen=True, slots=True)
class Guard:
    key: str
    create_revision: int  # etcd's own numbering, as leader.py reads it (no rev_out shift)

    def compare(self) -> Json:
        return {"key": b64(self.key), "target": "CREATE", "result": "EQUAL",
                "create_revision": str(self.create_revision)}


class EtcdStore(Store):
    def __init__(self, endpoints: list[str], watch_idle_timeout: float = IDLE_TIMEOUT_S) -> None:
        self.gateway = Gateway(endpoints)
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
    def _call(self, path: str, body: Json, idempotent: bool = False) -> Json:
        if self._closed:
            raise StoreClosed("store closed")
        return self.gateway.call(path, body, idempotent=idempotent)

    def _call_many(self, path: str, bodies: list[Json], idempotent: bool = False,
                   spread: bool = False) -> list[Json | EtcdError]:
        if self._closed:
            raise StoreClosed("store closed")
        return self.gateway.call_many(path, bodies, idempotent=idempotent, spread=spread)

    def get(self, key: str) -> KeyValue | None:
        kvs = self._call("kv/range", {"key": b64(key)}, idempotent=True).get("kvs") or []
        return to_kv(kvs[0]) if kvs else None

    def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        start = prefix.encode() if prefix else b"\0"
        end = b64(prefix_range_end(prefix.encode()) if prefix else b"\0")
        items: list[KeyValue] = []
        revision = 0
        while True:
            body: Json = {"key": b64(start), "range_end": end, "limit": str(LIST_PAGE)}
            if revision:
                body["revision"] = str(revision)  # later pages read the first page's snapshot
            answer = self._call("kv/range", body, idempotent=True)
            revision = revision or num(answer["header"], "revision")  # etcd's own numbering
            page = [to_kv(kv) for kv in answer.get("kvs") or []]
            items.extend(page)
            if not answer.get("more") or not page:
                return items, rev_out(revision)
            start = page[-1].key.encode() + b"\0"

    def current_revision(self) -> int:
        answer = self._call("kv/range", {"key": _PROBE_KEY, "count_only": True}, idempotent=True)
        return rev_out(num(answer["header"], "revision"))

    def _readable_at(self, revision: int) -> bool:
        """False when ``revision`` is below etcd's compaction point."""
        try:
            self._call("kv/range", {"key": _PROBE_KEY, "count_only": True, "revision": str(rev_in(revision))},
                       idempotent=True)
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

    def _txn_body(self, key: str, compare: _Compares, success: _Compares, guard: Guard | None) -> Json:
        # On failure, the key's revisions tell KeyNotFound from Conflict; its value is not
        # needed, and leaving it out spares etcd's gateway encoding it as JSON (the
        # gateway's JSON work is most of etcd's CPU).
        failure: _Compares = [{"request_range": {"key": b64(key), "keys_only": True}}]
        if guard is not None:
            compare = [*compare, guard.compare()]
            failure.append({"request_range": {"key": b64(guard.key), "keys_only": True}})
        return {"compare": compare, "success": success, "failure": failure}

    def _txn_outcome(self, key: str, answer: Json, guard: Guard | None) -> bool:
        """Whether the Txn succeeded; raises Fenced when it failed on the guard."""
        if answer.get("succeeded"):
            return True
        if guard is not None:
            responses = answer.get("responses") or []
            leader = responses[1]["response_range"].get("kvs") or []
            if not leader or num(leader[0], "create_revision") != guard.create_revision:
                log.warning("fenced write to %s refused: leadership term %d has ended", key, guard.create_revision)
                raise Fenced(f"write to {key} refused: the leadership term {guard.create_revision} has ended")
        return False

    def _txn(self, key: str, compare: _Compares, success: _Compares, guard: Guard | None) -> tuple[bool, Json]:
        answer = self._call("kv/txn", self._txn_body(key, compare, success, guard))
        return self._txn_outcome(key, answer, guard), answer

    def _create(self, key: str, value: bytes, guard: Guard | None) -> KeyValue:
        compare = [{"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}]
        put = {"request_put": {"key": b64(key), "value": b64(value)}}
        ok, answer = self._txn(key, compare, [put], guard)
        if not ok:
            raise KeyExists(key)
        revision = rev_out(num(answer["header"], "revision"))
        return KeyValue(key, value, revision, revision)

    def _compare_current(self, key: str, expected_revision: int | None) -> _Compares:
        compare = [{"key": b64(key), "target": "VERSION", "result": "GREATER", "version": "0"}]
        if expected_revision is not None:
            compare.append({"key": b64(key), "target": "MOD", "result": "EQUAL",
                            "mod_revision": str(rev_in(expected_revision))})
        return compare

    def _refused(self, key: str, expected_revision: int | None, answer: Json) -> StoreError:
        kvs = (answer.get("responses") or [{}])[0].get("response_range", {}).get("kvs") or []
        if not kvs:
            return KeyNotFound(key)
        return Conflict(key, expected_revision or 0, to_kv(kvs[0]).mod_revision)

    def _update(self, key: str, value: bytes, expected_revision: int | None, guard: Guard | None) -> KeyValue:
        ok, answer = self._txn(key, self._compare_current(key, expected_revision), self._put(key, value), guard)
        return self._updated(key, value, expected_revision, ok, answer)

    @staticmethod
    def _put(key: str, value: bytes) -> _Compares:
        # The key's create_revision comes from a keys-only read after the put, not from
        # prev_kv: prev_kv would send the whole old value back through the gateway.
        return [{"request_put": {"key": b64(key), "value": b64(value)}},
                {"request_range": {"key": b64(key), "keys_only": True}}]

    def _updated(self, key: str, value: bytes, expected_revision: int | None, ok: bool, answer: Json) -> KeyValue:
        if not ok:
            raise self._refused(key, expected_revision, answer)
        written = answer["responses"][1]["response_range"]["kvs"][0]
        revision = rev_out(num(answer["header"], "revision"))
        return KeyValue(key, value, rev_out(num(written, "create_revision")), revision)

    def _update_many(self, writes: Writes, guard: Guard | None) -> WriteResults:
        """One Txn per write, as ``update`` sends it, so each write takes its own revision
        (a watch resuming from one object's resourceVersion must not skip another object
        written at the same revision: one Txn for the batch would give them all one). The
        writes are independent, so the Txns are pipelined over several connections at once
        (Gateway.call_many's spread): the batch waits for a few raft commits, not one per
        write."""
        bodies = [self._txn_body(key, self._compare_current(key, expected), self._put(key, value), guard)
                  for key, value, expected in writes]
        answers = self._call_many("kv/txn", bodies, spread=True)
        results: WriteResults = []
        fenced: Fenced | None = None
        for (key, value, expected), answer in zip(writes, answers, strict=True):
            if isinstance(answer, EtcdError):
                raise answer
            try:
                results.append(self._updated(key, value, expected, self._txn_outcome(key, answer, guard), answer))
            except (KeyNotFound, Conflict) as err:
                results.append(err)
            except Fenced as err:
                fenced = fenced or err
        if fenced is not None:
            # The term ended during the batch: the writes from then on were refused (those
            # before landed), and the caller hears it as it would from a loop of update().
            raise fenced
        return results

    def update_many(self, writes: Writes) -> WriteResults:
        return self._update_many(writes, None)

    def get_many(self, keys: Sequence[str]) -> builtins.list[KeyValue | None]:
        # One Txn of range requests per TXN_OPS keys (etcd's --max-txn-ops): one snapshot
        # and one round trip for a scheduler's batch of bindings.
        chunks = [keys[i:i + TXN_OPS] for i in range(0, len(keys), TXN_OPS)]
        bodies = [{"success": [{"request_range": {"key": b64(key)}} for key in chunk]} for chunk in chunks]
        out: builtins.list[KeyValue | None] = []
        for answer in self._call_many("kv/txn", bodies, idempotent=True):
            if isinstance(answer, EtcdError):
                raise answer
            for response in answer.get("responses") or []:
                kvs = response.get("response_range", {}).get("kvs") or []
                out.append(to_kv(kvs[0]) if kvs else None)
        return out

    def _delete(self, key: str, expected_revision: int | None, guard: Guard | None) -> KeyValue:
        delete = {"request_delete_range": {"key": b64(key), "prev_kv": True}}
        ok, answer = self._txn(key, self._compare_current(key, expected_revision), [delete], guard)
        if not ok:
            raise self._refused(key, expected_revision, answer)
        prev = to_kv(answer["responses"][0]["response_delete_range"]["prev_kvs"][0])
        return KeyValue(key, prev.value, prev.create_revision, rev_out(num(answer["header"], "revision")))

    # -- watch and compaction ------------------------------------------------------
    def watch(self, prefix: str, start_revision: int) -> Watch:
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
            watch = feed.subscribe(prefix, start_revision)
            if watch is not None:
                return watch
        return self._open_feed(prefix, start_revision)

    def _open_feed(self, prefix: str, start_revision: int) -> Watch:
        """A new etcd stream from ``start_revision``, shared from now on unless a feed for
        this prefix is registered already (this one then serves its one watch only)."""
        with self._lock:
            registered = self._feeds.get(prefix)
            shared = registered is None or registered.ended
        feed = Feed(prefix, start_revision, on_idle=self._retire, linger=LINGER_S if shared else 0)
        watch = feed.subscribe(prefix, start_revision)
        assert watch is not None  # a fresh feed holds everything after its start
        key = b64(prefix.encode() if prefix else b"\0")
        end = b64(prefix_range_end(prefix.encode()) if prefix else b"\0")
        stream = EtcdWatch(self.gateway, feed, key, end, start_revision, on_end=lambda _s: None,
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
            self._call("kv/compaction", {"revision": str(rev_in(revision)), "physical": True})
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
        self.gateway.close()


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

    def watch(self, prefix: str, start_revision: int) -> Watch:
        return self.base.watch(prefix, start_revision)

    def compact(self, revision: int) -> None:
        self.base.compact(revision)

    def current_revision(self) -> int:
        return self.base.current_revision()

    def compacted_revision(self) -> int:
        return self.base.compacted_revision()

    def close(self) -> None:
        """The view owns nothing: the master closes the underlying store."""
