"""One contract Watch fed by one etcd watch stream (gRPC ``Watch``), in a thread of its own.

etcd delivers a prefix's events in revision order, history first and then live, so the
thread only translates and pushes. Two details make etcd's stream match the contract:

- The contract's ``start_revision`` is exclusive (events *after* it); etcd's is inclusive.
  The stream starts *at* the contract revision and drops events at it. That way etcd's own
  compaction check ("start < compacted") is exactly the contract's. (Revisions shift by one
  between etcd and the contract: see etcd_rpc.rev_out.)
- A DELETE from etcd carries only the key and the deleting revision; the contract's DELETE
  carries the deleted value, so the event is rebuilt from the previous value: ``prev_kv``
  from etcd, or (``track_values``, what the shared feeds of etcd_fanout.py use) the values
  the watch read at its start revision and keeps current from the events.

When the connection breaks (an etcd member died) the stream is reopened on the next endpoint
from the last revision delivered, with back-off, so the consumer sees no gap and no
duplicate. If etcd compacted past that revision meanwhile, the watch ends with
RevisionCompacted and the consumer relists (410 Gone at the API).

Silence is a failure too. A stopped (SIGSTOP, hung) etcd or a half-open connection sends
nothing and closes nothing, so every read on the stream has an idle timeout. The stream asks
for progress notifications (etcd sends one on an idle stream every
``--experimental-watch-progress-notify-interval``; EtcdServer sets it well below the
timeout), so a healthy stream is never silent that long. When the timeout fires, a quick
unary probe decides: etcd answers → the connection was bad, reopen the stream from the last
revision (nothing visible to the consumer); etcd does not answer → the watch ends with
StoreUnavailable and the consumer relists or resumes once the store is back. Reconnecting
that keeps failing for longer than the idle timeout ends the watch the same way, so a
consumer never waits on a dead store without hearing about it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from sigma.store import etcd_pb as pb
from sigma.store.contract import (
    KeyValue,
    RevisionCompacted,
    StoreClosed,
    StoreError,
    StoreUnavailable,
    Watch,
    WatchEvent,
)
from sigma.store.etcd_grpc import Broken, Call, Connection, NotSent
from sigma.store.etcd_rpc import COMPACTED, FUTURE_REVISION, RANGE, WATCH, EtcdError, Rpc, refusal, rev_in, rev_out

log = logging.getLogger("sigma.store.etcd")
RECONNECT_FIRST_S = 0.1
RECONNECT_MAX_S = 2.0
# No byte from etcd for this long (not even a progress notification) and the stream is
# suspect. Three progress intervals of EtcdServer's etcd (PROGRESS_NOTIFY_S there).
IDLE_TIMEOUT_S = 15.0
PROBE_TIMEOUT_S = 2.0
VALUES_PAGE = 1000
_PROBE = pb.RangeRequest(key=b"\0sigma-probe", count_only=True)


class _Silent(Exception):
    """The stream sent nothing for the idle timeout."""


def to_kv(kv: Any) -> KeyValue:
    return KeyValue(kv.key.decode(), kv.value, rev_out(kv.create_revision), rev_out(kv.mod_revision))


def to_event(raw: Any) -> WatchEvent:
    kv = to_kv(raw.kv)
    prev = to_kv(raw.prev_kv) if raw.HasField("prev_kv") else None
    if raw.type == pb.DELETE:
        # prev_kv is only missing if compaction raced past the event; keep what etcd gave.
        old = prev or kv
        return WatchEvent("DELETE", KeyValue(kv.key, old.value, old.create_revision, kv.mod_revision), prev)
    return WatchEvent("PUT", kv, None if raw.kv.version == 1 else prev)


class EtcdWatch:
    def __init__(self, rpc: Rpc, watch: Watch, key: bytes, range_end: bytes, start: int,
                 on_end: Callable[[EtcdWatch], None], idle_timeout: float = IDLE_TIMEOUT_S,
                 track_values: bool = False) -> None:
        self.rpc = rpc
        # With track_values, the watch keeps every key's current value under its prefix
        # (read once at the start revision, then kept up to date by the events) and builds
        # each event's previous value from it, rather than having etcd send prev_kv: etcd
        # then does not read the old value back, and a shared stream (etcd_fanout.Feed)
        # carries half the bytes.
        self._track_values = track_values
        self._values: dict[str, KeyValue] | None = None
        self.idle_timeout = idle_timeout
        self._heard = time.monotonic()  # the last time etcd sent this watch anything
        self.watch = watch
        self._key = key
        self._range_end = range_end
        self._last = start  # the last revision delivered (or the contract start revision)
        self._on_end = on_end
        self._stopped = threading.Event()
        self._conn: Connection | None = None  # the stream's own connection, while open
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"etcd-watch {watch.prefix}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, error: StoreError | None = None) -> None:
        """End the stream; with ``error``, the consumer sees it (store closed)."""
        self._stopped.set()
        if error is not None:
            self.watch._fail(error)
        with self._lock:
            conn = self._conn
        if conn is not None:
            conn.close()  # ends the stream: the thread wakes up and sees it stopped

    def _run(self) -> None:
        delay = RECONNECT_FIRST_S
        try:
            while not self._stopped.is_set():
                try:
                    if self._stream():
                        return
                    delay = RECONNECT_FIRST_S  # the stream worked; a new break starts over
                except _Silent:
                    if self._stopped.is_set():
                        return
                    if not self._etcd_answers():
                        self._give_up(f"etcd sent nothing for {self.idle_timeout:.0f}s and does not answer "
                                      f"a probe within {PROBE_TIMEOUT_S:.0f}s")
                        return
                    log.info("watch %s was silent for %.0fs but etcd answers: reopening from revision %d",
                             self.watch.prefix, self.idle_timeout, self._last)
                    continue  # a half-open connection: a new one right away
                except (NotSent, Broken, StoreError, ValueError) as err:
                    if self._stopped.is_set():
                        return
                    if time.monotonic() - self._heard > self.idle_timeout:
                        self._give_up(f"no etcd stream for {self.idle_timeout:.0f}s (last error: {err})")
                        return
                    log.info("watch %s broke (%s); reconnecting from revision %d in %.1fs",
                             self.watch.prefix, err, self._last, delay)
                self._stopped.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
        finally:
            self._on_end(self)

    def _etcd_answers(self) -> bool:
        try:
            self.rpc.one(RANGE, _PROBE, pb.RangeResponse, idempotent=True, timeout=PROBE_TIMEOUT_S)
        except StoreError:
            return False
        return True

    def _give_up(self, why: str) -> None:
        log.warning("watch %s ends at revision %d: %s", self.watch.prefix, self._last, why)
        self.watch._fail(StoreUnavailable(f"etcd watch on {self.watch.prefix!r} ended at revision {self._last}: "
                                          f"{why}; relist or watch again from there"))

    def _load_values(self) -> bool:
        """Read the prefix at the revision the stream starts from (once: the events keep
        it current across reconnections). False when the watch is finished for good."""
        values: dict[str, KeyValue] = {}
        start = self._key
        while True:
            request = pb.RangeRequest(key=start, range_end=self._range_end, limit=VALUES_PAGE,
                                      revision=rev_in(self._last))
            try:
                answer = self.rpc.one(RANGE, request, pb.RangeResponse, idempotent=True)
            except EtcdError as err:
                if COMPACTED in err.message:
                    self.watch._fail(RevisionCompacted(self._last, self._last))
                    return False
                if FUTURE_REVISION in err.message:
                    # Started ahead of etcd (nothing to read yet): fall back to prev_kv.
                    self._track_values = False
                    return True
                raise
            for raw in answer.kvs:
                kv = to_kv(raw)
                values[kv.key] = kv
            if not answer.more or not answer.kvs:
                self._values = values
                return True
            start = answer.kvs[-1].key + b"\0"

    def _translate(self, raws: Any) -> list[WatchEvent]:
        if self._values is None:
            events = [to_event(raw) for raw in raws]
            return [e for e in events if e.revision > self._last]
        values = self._values
        out: list[WatchEvent] = []
        for raw in raws:
            kv = to_kv(raw.kv)
            if kv.mod_revision <= self._last:  # delivered before a reconnection
                continue
            prev = values.get(kv.key)
            if raw.type == pb.DELETE:
                old = prev or kv
                out.append(WatchEvent("DELETE", KeyValue(kv.key, old.value, old.create_revision, kv.mod_revision),
                                      prev))
                values.pop(kv.key, None)
            else:
                out.append(WatchEvent("PUT", kv, None if raw.kv.version == 1 else prev))
                values[kv.key] = kv
        return out

    def _stream(self) -> bool:
        """Read one stream until it ends; True when the watch is finished for good."""
        if self._track_values and self._values is None and not self._load_values():
            return True
        request = pb.WatchRequest()
        create = request.create_request
        create.key = self._key
        create.range_end = self._range_end
        create.start_revision = rev_in(self._last)
        create.prev_kv = self._values is None
        create.progress_notify = True
        conn, call = self.rpc.open_stream(WATCH, request)
        with self._lock:
            self._conn = conn
        try:
            self._heard = time.monotonic()
            if self._stopped.is_set():
                return True
            return self._read(call)
        finally:
            with self._lock:
                self._conn = None
            conn.close()

    def _read(self, call: Call) -> bool:
        while True:
            try:
                message = Connection.next_message(call, self.idle_timeout)
            except queue.Empty as err:
                raise _Silent() from err
            if message is None:  # the stream ended: why, the call's outcome says
                if self._stopped.is_set():
                    return True
                outcome = call.outcome()  # raises Broken/NotSent when the connection failed
                if isinstance(outcome, list):
                    raise Broken("etcd ended the watch stream")
                raise refusal(WATCH, outcome)
            self._heard = time.monotonic()
            result = pb.WatchResponse.FromString(message)
            if result.canceled or result.compact_revision:
                compacted = rev_out(result.compact_revision)
                if compacted:
                    self.watch._fail(RevisionCompacted(self._last, compacted))
                else:
                    self.watch._fail(StoreClosed(f"etcd canceled the watch: {result.cancel_reason}"))
                return True
            if result.events:
                events = self._translate(result.events)
                if events:
                    self._last = events[-1].revision
                    self.watch._push(events)
