"""One contract Watch fed by one etcd watch stream (``/v3/watch``), in a thread of its own.

etcd delivers a prefix's events in revision order, history first and then live, so the
thread only translates and pushes. Two details make etcd's stream match the contract:

- The contract's ``start_revision`` is exclusive (events *after* it); etcd's is inclusive.
  The stream starts *at* the contract revision and drops events at it. That way etcd's own
  compaction check ("start < compacted") is exactly the contract's. (Revisions shift by one
  between etcd and the contract: see etcd_gateway.rev_out.)
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

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import orjson

from sigma.store.contract import (
    KeyValue,
    RevisionCompacted,
    StoreClosed,
    StoreError,
    StoreUnavailable,
    Watch,
    WatchEvent,
)
from sigma.store.etcd_gateway import (
    COMPACTED,
    FUTURE_REVISION,
    EtcdError,
    Gateway,
    Json,
    b64,
    num,
    rev_in,
    rev_out,
    unb64,
)

log = logging.getLogger("sigma.store.etcd")
RECONNECT_FIRST_S = 0.1
RECONNECT_MAX_S = 2.0
# No byte from etcd for this long (not even a progress notification) and the stream is
# suspect. Three progress intervals of EtcdServer's etcd (PROGRESS_NOTIFY_S there).
IDLE_TIMEOUT_S = 15.0
PROBE_TIMEOUT_S = 2.0
VALUES_PAGE = 1000
_PROBE = {"key": b64(b"\0sigma-probe"), "count_only": True}


class _Silent(Exception):
    """The stream sent nothing for the idle timeout."""


def to_kv(kv: Json) -> KeyValue:
    return KeyValue(unb64(kv.get("key")).decode(), unb64(kv.get("value")),
                    rev_out(num(kv, "create_revision")), rev_out(num(kv, "mod_revision")))


def to_event(raw: Json) -> WatchEvent:
    kv = to_kv(raw["kv"])
    prev = to_kv(raw["prev_kv"]) if raw.get("prev_kv") else None
    if raw.get("type") == "DELETE":
        # prev_kv is only missing if compaction raced past the event; keep what etcd gave.
        old = prev or kv
        return WatchEvent("DELETE", KeyValue(kv.key, old.value, old.create_revision, kv.mod_revision), prev)
    return WatchEvent("PUT", kv, None if num(raw["kv"], "version") == 1 else prev)


class EtcdWatch:
    def __init__(self, gateway: Gateway, watch: Watch, key: str, range_end: str, start: int,
                 on_end: Callable[[EtcdWatch], None], idle_timeout: float = IDLE_TIMEOUT_S,
                 track_values: bool = False) -> None:
        self.gateway = gateway
        # With track_values, the watch keeps every key's current value under its prefix
        # (read once at the start revision, then kept up to date by the events) and builds
        # each event's previous value from it, rather than having etcd send prev_kv: etcd
        # then neither reads the old value back nor encodes it through its JSON gateway,
        # and a shared stream (etcd_fanout.Feed) carries half the bytes.
        self._track_values = track_values
        self._values: dict[str, KeyValue] | None = None
        self.idle_timeout = idle_timeout
        self._heard = time.monotonic()  # the last time etcd sent this watch anything
        self.watch = watch
        self._key = key  # base64, as the gateway wants them
        self._range_end = range_end
        self._last = start  # the last revision delivered (or the contract start revision)
        self._on_end = on_end
        self._stopped = threading.Event()
        self._sock: socket.socket | None = None
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
            sock = self._sock
        if sock is not None:
            # shutdown (not close) wakes the thread blocked in recv on this socket.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

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
                except (httpx.TransportError, StoreError, ValueError) as err:
                    if self._stopped.is_set():
                        return
                    if time.monotonic() - self._heard > self.idle_timeout:
                        self._give_up(f"no etcd stream for {self.idle_timeout:.0f}s (last error: {err!r})")
                        return
                    log.info("watch %s broke (%r); reconnecting from revision %d in %.1fs",
                             self.watch.prefix, err, self._last, delay)
                self._stopped.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
        finally:
            self._on_end(self)

    def _etcd_answers(self) -> bool:
        try:
            self.gateway.call("kv/range", _PROBE, idempotent=True, timeout=PROBE_TIMEOUT_S)
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
            body = {"key": start, "range_end": self._range_end, "limit": str(VALUES_PAGE),
                    "revision": str(rev_in(self._last))}
            try:
                answer = self.gateway.call("kv/range", body, idempotent=True)
            except EtcdError as err:
                if COMPACTED in err.message:
                    self.watch._fail(RevisionCompacted(self._last, self._last))
                    return False
                if FUTURE_REVISION in err.message:
                    # Started ahead of etcd (nothing to read yet): fall back to prev_kv.
                    self._track_values = False
                    return True
                raise
            page = answer.get("kvs") or []
            for raw in page:
                kv = to_kv(raw)
                values[kv.key] = kv
            if not answer.get("more") or not page:
                self._values = values
                return True
            start = b64(unb64(page[-1]["key"]) + b"\0")

    def _translate(self, raws: list[Json]) -> list[WatchEvent]:
        if self._values is None:
            events = [to_event(raw) for raw in raws]
            return [e for e in events if e.revision > self._last]
        values = self._values
        out: list[WatchEvent] = []
        for raw in raws:
            kv = to_kv(raw["kv"])
            if kv.mod_revision <= self._last:  # delivered before a reconnection
                continue
            prev = values.get(kv.key)
            if raw.get("type") == "DELETE":
                old = prev or kv
                out.append(WatchEvent("DELETE", KeyValue(kv.key, old.value, old.create_revision, kv.mod_revision),
                                      prev))
                values.pop(kv.key, None)
            else:
                out.append(WatchEvent("PUT", kv, None if num(raw["kv"], "version") == 1 else prev))
                values[kv.key] = kv
        return out

    def _stream(self) -> bool:
        """Read one stream until it ends; True when the watch is finished for good."""
        if self._track_values and self._values is None and not self._load_values():
            return True
        body = {"create_request": {"key": self._key, "range_end": self._range_end,
                                   "start_revision": str(rev_in(self._last)), "prev_kv": self._values is None,
                                   "progress_notify": True}}
        try:
            with self.gateway.stream("watch", body, idle_timeout=self.idle_timeout) as response:
                self._heard = time.monotonic()
                stream = response.extensions.get("network_stream")
                with self._lock:
                    self._sock = stream.get_extra_info("socket") if stream is not None else None
                if self._stopped.is_set():
                    return True
                return self._read(response)
        except httpx.ReadTimeout as err:
            raise _Silent() from err

    def _read(self, response: httpx.Response) -> bool:
        for line in _lines(response):
            self._heard = time.monotonic()
            if not line.strip():
                continue
            result: Json = orjson.loads(line).get("result") or {}
            if result.get("canceled") or result.get("compact_revision"):
                compacted = rev_out(num(result, "compact_revision"))
                if compacted:
                    self.watch._fail(RevisionCompacted(self._last, compacted))
                else:
                    self.watch._fail(StoreClosed(f"etcd canceled the watch: {result.get('cancel_reason')}"))
                return True
            events = self._translate(result.get("events") or [])
            if events:
                self._last = events[-1].revision
                self.watch._push(events)
        return self._stopped.is_set()


def _lines(response: httpx.Response) -> Iterator[bytes]:
    """The stream's lines as bytes (orjson parses bytes): httpx's iter_lines decodes every
    chunk to text first, a cost paid on every event of every watch."""
    pending = b""
    for chunk in response.iter_bytes():
        parts = (pending + chunk).split(b"\n") if pending else chunk.split(b"\n")
        pending = parts.pop()
        yield from parts
    if pending:
        yield pending
