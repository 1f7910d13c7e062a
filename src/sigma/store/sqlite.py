"""The embedded store: the contract on one SQLite file.

Layout (one file, WAL journal):

- ``meta``: the store revision and the compacted revision, so both survive a restart.
- ``kv``: the current value of every live key.
- ``history``: one row per revision (the MVCC log). A row holds the new value (or, for a
  delete, the deleted value) and the value it replaced, so a watch can replay any revision
  after the compaction point with complete events, even when the replaced value's own
  revision has been compacted away.

Every write is one transaction that touches all three tables, so a crash leaves either the
whole write or none of it. With ``synchronous=NORMAL`` (the default) a committed write
survives the process being killed (kill -9, OOM): the WAL frames are in the kernel's page
cache. Surviving a power loss or kernel panic needs ``synchronous="FULL"``, which fsyncs the
WAL on every commit and costs far more per write.

One process owns the file. All statements run on one connection behind a lock; watch events
are handed to watches outside that lock, in revision order (see ``_Fanout``).

Storage faults: when the state directory's disk fills up or its file system turns read-only
(the kernel does that after a disk error), the failed write's transaction is rolled back
whole, the in-memory revision does not move, no watch hears of it, and the caller gets
``StorageFull`` / ``StorageReadOnly`` naming the directory (the API answers 507 / 503).
Reads keep working. Once space is freed, the next write simply succeeds.
"""

from __future__ import annotations

import builtins
import errno
import logging
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Literal

from sigma.store.contract import (
    Conflict,
    Deletes,
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionCompacted,
    Route,
    StorageFull,
    StorageReadOnly,
    Store,
    StoreClosed,
    StoreUnavailable,
    Watch,
    WatchEvent,
    WriteResults,
    Writes,
)
from sigma.store.routing import RoutedSubscribers

log = logging.getLogger("sigma.store.sqlite")
Synchronous = Literal["NORMAL", "FULL"]
# Spelled out here because inside SqliteStore the name ``list`` is the list() method.
_Events = list[WatchEvent]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0);
CREATE TABLE IF NOT EXISTS kv (
    key             TEXT PRIMARY KEY,
    value           BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    revision          INTEGER PRIMARY KEY,
    key               TEXT NOT NULL,
    deleted           INTEGER NOT NULL,  -- 1: DELETE event, value is the deleted value
    value             BLOB NOT NULL,
    create_revision   INTEGER NOT NULL,
    prev_mod_revision INTEGER,           -- NULL when the write created the key
    prev_value        BLOB               -- value replaced by an update (a delete: = value)
);
"""

_GET = "SELECT value, create_revision, mod_revision FROM kv WHERE key = ?"
_LIST_RANGE = (
    "SELECT key, value, create_revision, mod_revision FROM kv WHERE key >= ? AND key < ? ORDER BY key"
)
_LIST_FROM = "SELECT key, value, create_revision, mod_revision FROM kv WHERE key >= ? ORDER BY key"
_LIST_CONTAINING = (
    "SELECT key, value, create_revision, mod_revision FROM kv WHERE key >= ? AND key < ? AND instr(value, ?) > 0"
    " ORDER BY key"
)
_INSERT_KV = "INSERT INTO kv (key, value, create_revision, mod_revision) VALUES (?, ?, ?, ?)"
_UPDATE_KV = "UPDATE kv SET value = ?, mod_revision = ? WHERE key = ?"
_DELETE_KV = "DELETE FROM kv WHERE key = ?"
_INSERT_HISTORY = "INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?)"
_HISTORY_COLUMNS = "revision, key, deleted, value, create_revision, prev_mod_revision, prev_value"
_HISTORY_RANGE = (
    f"SELECT {_HISTORY_COLUMNS} FROM history WHERE revision > ? AND key >= ? AND key < ? ORDER BY revision"
)
_HISTORY_FROM = f"SELECT {_HISTORY_COLUMNS} FROM history WHERE revision > ? AND key >= ? ORDER BY revision"
_SET_META = "UPDATE meta SET value = ? WHERE name = ?"
_GET_META = "SELECT value FROM meta WHERE name = ?"
_DELETE_HISTORY = "DELETE FROM history WHERE revision <= ?"
_COMPACT_STEP = 1000
# SQLite's primary result codes (the low byte of ``sqlite_errorcode``) that mean the storage,
# not the request, is at fault.
_SQLITE_BUSY, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL, _SQLITE_CANTOPEN = 5, 8, 10, 13, 14
# Below this much free space an I/O error is blamed on a full disk: SQLite reports some
# ENOSPC failures (a WAL or -shm extension, a checkpoint) as a plain I/O error.
_NEARLY_FULL_BYTES = 1 << 20


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (None: no
    bound). SQLite compares TEXT as UTF-8 bytes, which orders like code points, so bumping
    the last code point gives the bound and lets ``list`` use the primary-key index."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            # Skip the surrogate block: those code points cannot be encoded in UTF-8.
            nxt = 0xE000 if 0xD800 <= last + 1 <= 0xDFFF else last + 1
            return "".join(chars) + chr(nxt)
    return None


@dataclass(slots=True)
class _Subscription:
    watch: Watch
    # Events at or below this revision reached the watch by replay from history.
    live_after: int


class _Fanout:
    """Hands committed events to watches, outside the database lock.

    Writers enqueue their event while still holding the database lock, so the queue is in
    revision order. Whoever then holds ``_deliver_lock`` empties the queue in that order;
    that single consumer is what keeps each watch gap-free and ordered even when several
    writers finish at once. A writer returns only after its own event has been delivered,
    which is also why a watch listener must not write to the store (it would wait on itself).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _queue and _subs
        self._deliver_lock = threading.Lock()
        self._queue: deque[WatchEvent] = deque()
        # Indexed by route: an agent's watch of its node's pods gets only those (routing.py).
        self._subs: RoutedSubscribers[_Subscription] = RoutedSubscribers()

    def subscribe(self, watch: Watch, live_after: int) -> None:
        with self._lock:
            self._subs.add(watch, _Subscription(watch, live_after))

    def unsubscribe(self, watch: Watch) -> None:
        with self._lock:
            self._subs.discard(watch)

    def enqueue(self, event: WatchEvent) -> None:
        with self._lock:
            if self._subs:  # nobody can miss it: a later watch replays it from history
                self._queue.append(event)

    def deliver(self) -> None:
        with self._deliver_lock:
            while True:
                with self._lock:
                    if not self._queue:
                        return
                    event = self._queue.popleft()
                    subs = self._subs.for_event(event)
                key = event.kv.key
                for sub in subs:
                    if event.revision > sub.live_after and key.startswith(sub.watch.prefix):
                        sub.watch._push([event])

    def close_all(self, error: StoreClosed) -> None:
        with self._lock:
            subs = self._subs.clear()
            self._queue.clear()
        for sub in subs:
            sub.watch._fail(error)


def _make_private(path: str) -> None:
    """The database holds every object, Secrets included: 0600. SQLite creates its -wal and
    -shm files with the database file's mode, so they follow; existing ones are fixed too."""
    if path == ":memory:" or path.startswith("file:"):
        return
    # OSError beyond these: a state directory SQLite cannot use either (read-only, full),
    # which opening it reports in its own words.
    with suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        with suppress(OSError):
            os.chmod(path + suffix, 0o600)


class SqliteStore(Store):
    def __init__(self, path: str, synchronous: Synchronous = "NORMAL") -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = path
        _make_private(path)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per call.
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        # A large compaction can grow the WAL; give the space back after the checkpoint.
        self._conn.execute("PRAGMA journal_size_limit=67108864")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._fanout = _Fanout()
        self._closed = False
        self._revision = self._meta("revision")
        self._compacted = self._meta("compacted")

    # -- reads ---------------------------------------------------------------------
    def get(self, key: str) -> KeyValue | None:
        with self._lock:
            self._check_open()
            try:
                row = self._conn.execute(_GET, (key,)).fetchone()
            except sqlite3.Error as err:
                raise self._storage_error(err) from err
        return None if row is None else KeyValue(key, row[0], row[1], row[2])

    def get_many(self, keys: Sequence[str]) -> list[KeyValue | None]:
        # One lock for the batch: a scheduler binding hundreds of pods would otherwise queue
        # behind the API's writes once per pod.
        with self._lock:
            self._check_open()
            rows = [self._conn.execute(_GET, (key,)).fetchone() for key in keys]
        return [None if row is None else KeyValue(key, *row) for key, row in zip(keys, rows, strict=True)]

    def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        # Every write goes through this lock, so the rows and the revision belong together.
        with self._lock:
            self._check_open()
            end = prefix_end(prefix)
            try:
                if end is None:
                    rows = self._conn.execute(_LIST_FROM, (prefix,)).fetchall()
                else:
                    rows = self._conn.execute(_LIST_RANGE, (prefix, end)).fetchall()
            except sqlite3.Error as err:
                raise self._storage_error(err) from err
            revision = self._revision
        return [KeyValue(*row) for row in rows], revision

    def list_containing(self, prefix: str, needle: bytes) -> builtins.list[KeyValue]:
        """Filtered by SQLite itself: deleting one pod among 30,000 looks for its dependents
        in milliseconds, not by copying every stored pod into Python."""
        end = prefix_end(prefix)
        if end is None or not needle:
            return super().list_containing(prefix, needle)
        with self._lock:
            self._check_open()
            try:
                rows = self._conn.execute(_LIST_CONTAINING, (prefix, end, needle)).fetchall()
            except sqlite3.Error as err:
                raise self._storage_error(err) from err
        return [KeyValue(*row) for row in rows]

    def current_revision(self) -> int:
        with self._lock:
            self._check_open()
            return self._revision

    def compacted_revision(self) -> int:
        with self._lock:
            self._check_open()
            return self._compacted

    # -- writes --------------------------------------------------------------------
    # Each write queues its watch event only once its COMMIT succeeded (still under the lock,
    # so events stay in revision order): a commit that fails (disk full) must not reach a
    # watch as a change that never happened.
    def create(self, key: str, value: bytes) -> KeyValue:
        with self._lock:
            with self._write() as rev:
                try:  # the primary key says whether it exists: no read before the write
                    self._conn.execute(_INSERT_KV, (key, value, rev, rev))
                except sqlite3.IntegrityError:
                    raise KeyExists(key) from None
                self._conn.execute(_INSERT_HISTORY, (rev, key, 0, value, rev, None, None))
                kv = KeyValue(key, value, rev, rev)
            self._fanout.enqueue(WatchEvent("PUT", kv, None))
        self._fanout.deliver()
        return kv

    def update(self, key: str, value: bytes, expected_revision: int | None = None) -> KeyValue:
        with self._lock:
            with self._write() as rev:
                prev = self._current(key, expected_revision)
                self._conn.execute(_UPDATE_KV, (value, rev, key))
                self._conn.execute(
                    _INSERT_HISTORY,
                    (rev, key, 0, value, prev.create_revision, prev.mod_revision, prev.value),
                )
                kv = KeyValue(key, value, prev.create_revision, rev)
            self._fanout.enqueue(WatchEvent("PUT", kv, prev))
        self._fanout.deliver()
        return kv

    def update_many(self, writes: Writes) -> WriteResults:
        """One transaction for the whole batch (one commit instead of one per write); each
        write still takes its own revision and compares its own expected revision."""
        def put(i: int, prev: KeyValue, rev: int) -> WatchEvent:
            value = writes[i][1]
            self._conn.execute(_UPDATE_KV, (value, rev, prev.key))
            self._conn.execute(
                _INSERT_HISTORY, (rev, prev.key, 0, value, prev.create_revision, prev.mod_revision, prev.value))
            return WatchEvent("PUT", KeyValue(prev.key, value, prev.create_revision, rev), prev)

        return self._write_batch([(key, expected) for key, _, expected in writes], put)

    def delete_many(self, deletes: Deletes) -> WriteResults:
        """One transaction for the whole batch, as update_many; each delete takes its own
        revision and is its own DELETE event."""
        gone: list[tuple[str]] = []
        history: list[tuple[int, str, int, bytes, int, int, None]] = []

        def remove(_i: int, prev: KeyValue, rev: int) -> WatchEvent:
            gone.append((prev.key,))
            history.append((rev, prev.key, 1, prev.value, prev.create_revision, prev.mod_revision, None))
            return WatchEvent("DELETE", KeyValue(prev.key, prev.value, prev.create_revision, rev), prev)

        def flush() -> None:  # the keys are distinct: the rows can go in two statements
            self._conn.executemany(_DELETE_KV, gone)
            self._conn.executemany(_INSERT_HISTORY, history)

        return self._write_batch(list(deletes), remove, flush)

    def _write_batch(self, items: Sequence[tuple[str, int | None]], write: Callable[[int, KeyValue, int], WatchEvent],
                     flush: Callable[[], None] | None = None) -> WriteResults:
        """The writes of a batch in one transaction: each item's current value is checked
        against its expected revision (a refusal is its result, the others go on), then
        ``write(index, current, revision)`` records it at its own revision; ``flush`` ends the
        batch's statements. The events reach the watches once the batch has committed."""
        results: WriteResults = []
        with self._lock:
            rev = self._revision
            events: _Events = []
            with self._transaction():
                for i, (key, expected) in enumerate(items):
                    try:
                        prev = self._current(key, expected)
                    except (KeyNotFound, Conflict) as err:
                        results.append(err)
                        continue
                    rev += 1
                    event = write(i, prev, rev)
                    results.append(event.kv)
                    events.append(event)
                if events:
                    if flush is not None:
                        flush()
                    self._conn.execute(_SET_META, (rev, "revision"))
            self._revision = rev
            for event in events:
                self._fanout.enqueue(event)
        self._fanout.deliver()
        return results

    def delete(self, key: str, expected_revision: int | None = None) -> KeyValue:
        with self._lock:
            with self._write() as rev:
                prev = self._current(key, expected_revision)
                self._conn.execute(_DELETE_KV, (key,))
                self._conn.execute(
                    _INSERT_HISTORY,
                    (rev, key, 1, prev.value, prev.create_revision, prev.mod_revision, None),
                )
                kv = KeyValue(key, prev.value, prev.create_revision, rev)
            self._fanout.enqueue(WatchEvent("DELETE", kv, prev))
        self._fanout.deliver()
        return kv

    def _current(self, key: str, expected_revision: int | None) -> KeyValue:
        row = self._conn.execute(_GET, (key,)).fetchone()
        if row is None:
            raise KeyNotFound(key)
        kv = KeyValue(key, row[0], row[1], row[2])
        if expected_revision is not None and kv.mod_revision != expected_revision:
            raise Conflict(key, expected_revision, kv.mod_revision)
        return kv

    @contextmanager
    def _write(self) -> Iterator[int]:
        """One transaction that takes the next revision. Call with ``_lock`` held. The
        in-memory revision moves only once the commit succeeded."""
        rev = self._revision + 1
        with self._transaction():
            yield rev
            self._conn.execute(_SET_META, (rev, "revision"))
        self._revision = rev

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._check_open()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except sqlite3.Error as err:
            raise self._storage_error(err) from err

    def _rollback(self) -> None:
        # After SQLITE_FULL or an I/O error SQLite may have rolled the transaction back
        # itself; a second ROLLBACK would fail and hide the error that matters.
        if not self._conn.in_transaction:
            return
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error as err:
            log.warning("rollback on %s failed: %s", self.path, err)

    def _storage_error(self, err: sqlite3.Error) -> Exception:
        """The store error a SQLite failure stands for; the original one when it is not a
        storage fault (a bug must stay visible as such)."""
        primary = (getattr(err, "sqlite_errorcode", None) or 0) & 0xFF
        where = os.path.dirname(os.path.abspath(self.path)) if self.path != ":memory:" else ":memory:"
        if primary == _SQLITE_FULL:
            return StorageFull(f"the disk holding the state directory {where} is full ({err}): "
                               "nothing was written; free some space and retry")
        if primary in (_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CANTOPEN):
            # An EROFS or ENOSPC write comes back from SQLite as a generic I/O error:
            # ask the file system which one it is, so the message names the cause.
            state = _filesystem_state(where)
            if state == "read-only" or primary == _SQLITE_READONLY:
                return StorageReadOnly(f"the state directory {where} is on a read-only file system ({err}): "
                                       "nothing was written; reads still work")
            if state == "full":
                return StorageFull(f"the disk holding the state directory {where} is full ({err}): "
                                   "nothing was written; free some space and retry")
            return StoreUnavailable(f"I/O error on the state directory {where} ({err}): nothing was written")
        if primary == _SQLITE_BUSY:
            return StoreUnavailable(f"{self.path} is locked by another process ({err})")
        return err

    # -- watch and compaction ------------------------------------------------------
    def watch(self, prefix: str, start_revision: int, route: Route | None = None) -> Watch:
        with self._lock:
            self._check_open()
            if start_revision < self._compacted:
                raise RevisionCompacted(start_revision, self._compacted)
            watch = Watch(prefix, on_close=self._fanout.unsubscribe, route=route)
            # Replay and subscribe under the database lock: no write can commit in between,
            # so history covers (start, now] and live delivery takes over after ``now``.
            # The watch is not handed out yet, so pushing here wakes no listener.
            try:
                replay = self._history(prefix, start_revision)
            except sqlite3.Error as err:
                raise self._storage_error(err) from err
            if replay:
                watch._push(replay)
            self._fanout.subscribe(watch, live_after=max(start_revision, self._revision))
        return watch

    def _history(self, prefix: str, after: int) -> _Events:
        end = prefix_end(prefix)
        if end is None:
            rows = self._conn.execute(_HISTORY_FROM, (after, prefix))
        else:
            rows = self._conn.execute(_HISTORY_RANGE, (after, prefix, end))
        return [_event_from_row(*row) for row in rows]

    def compact(self, revision: int) -> None:
        # Deleting history is slow (a few hundred ms per 10,000 revisions here), so it runs
        # in steps of _COMPACT_STEP revisions, each its own transaction, and writers get the
        # lock in between. The compacted revision rises with each step.
        with self._lock:
            self._check_open()
            if revision > self._revision:
                raise ValueError(f"cannot compact to {revision}: the store is at {self._revision}")
        while True:
            with self._lock:
                if revision <= self._compacted:
                    return
                step = min(revision, self._compacted + _COMPACT_STEP)
                with self._transaction():
                    self._conn.execute(_DELETE_HISTORY, (step,))
                    self._conn.execute(_SET_META, (step, "compacted"))
                self._compacted = step

    def auto_compact(self, keep: int) -> int:
        """Keep the last ``keep`` revisions of history; return the compacted revision.
        The master calls this periodically; watchers further behind get 410 Gone and
        re-list, as with Kubernetes on etcd."""
        with self._lock:
            target = self._revision - keep
        if target > 0:
            self.compact(target)
        return self.compacted_revision()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._conn.close()
        self._fanout.close_all(StoreClosed("store closed"))

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("store closed")

    def _meta(self, name: str) -> int:
        value: int = self._conn.execute(_GET_META, (name,)).fetchone()[0]
        return value


def _filesystem_state(directory: str) -> Literal["read-only", "full", "ok", "unknown"]:
    """Why writes to ``directory`` fail. statvfs misses a file system the kernel turned
    read-only after an error (ext4 marks it "emergency_ro", not a read-only mount), so
    this writes one byte to an unnamed temporary file there and reads the errno."""
    try:
        fs = os.statvfs(directory)
        if fs.f_flag & os.ST_RDONLY:
            return "read-only"
        fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY, 0o600)
        try:
            os.write(fd, b"\0")
        finally:
            os.close(fd)
    except OSError as err:
        if err.errno == errno.EROFS:
            return "read-only"
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            return "full"
        return "unknown"
    return "full" if fs.f_bavail * fs.f_frsize < _NEARLY_FULL_BYTES else "ok"


def _event_from_row(
    revision: int,
    key: str,
    deleted: int,
    value: bytes,
    create_revision: int,
    prev_mod_revision: int | None,
    prev_value: bytes | None,
) -> WatchEvent:
    kv = KeyValue(key, value, create_revision, revision)
    if prev_mod_revision is None:
        return WatchEvent("PUT", kv, None)
    if deleted:
        return WatchEvent("DELETE", kv, KeyValue(key, value, create_revision, prev_mod_revision))
    assert prev_value is not None
    return WatchEvent("PUT", kv, KeyValue(key, prev_value, create_revision, prev_mod_revision))
