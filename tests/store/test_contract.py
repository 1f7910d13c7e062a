"""The store contract (sigma.store.contract), run against every backend in conftest.BACKENDS."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from sigma.store.contract import (
    Conflict,
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionCompacted,
    Store,
    StoreClosed,
    Watch,
    WatchEvent,
)
from tests.store.conftest import Backend


def collect(watch: Watch, count: int, timeout: float = 5.0) -> list[WatchEvent]:
    """Exactly ``count`` events, or fail; a backend may deliver asynchronously."""
    events: list[WatchEvent] = []
    deadline = time.monotonic() + timeout
    while len(events) < count and time.monotonic() < deadline:
        events.extend(watch.wait(timeout=deadline - time.monotonic()))
    assert len(events) == count, f"expected {count} events, got {len(events)}: {events}"
    return events


def summary(events: list[WatchEvent]) -> list[tuple[str, str, bytes]]:
    return [(e.type, e.kv.key, e.kv.value) for e in events]


# -- get / create / update / delete ---------------------------------------------------


def test_get_of_a_missing_key_returns_none(store: Store) -> None:
    assert store.get("/a") is None


def test_get_many_returns_each_key_in_order_and_none_where_missing(store: Store) -> None:
    a = store.create("/r/a", b"1")
    b = store.create("/r/b", b"2")
    assert store.get_many(["/r/b", "/r/missing", "/r/a"]) == [b, None, a]
    assert store.get_many([]) == []


def test_create_stores_the_value_at_a_new_revision(store: Store) -> None:
    before = store.current_revision()
    kv = store.create("/a", b"1")
    assert kv == KeyValue("/a", b"1", before + 1, before + 1)
    assert store.get("/a") == kv
    assert store.current_revision() == before + 1


def test_create_of_an_existing_key_raises_key_exists_and_changes_nothing(store: Store) -> None:
    kv = store.create("/a", b"1")
    with pytest.raises(KeyExists):
        store.create("/a", b"2")
    assert store.get("/a") == kv
    assert store.current_revision() == kv.mod_revision


def test_update_replaces_the_value_and_keeps_the_create_revision(store: Store) -> None:
    created = store.create("/a", b"1")
    updated = store.update("/a", b"2")
    assert updated == KeyValue("/a", b"2", created.create_revision, created.mod_revision + 1)
    assert store.get("/a") == updated


def test_update_with_the_current_revision_succeeds(store: Store) -> None:
    created = store.create("/a", b"1")
    assert store.update("/a", b"2", expected_revision=created.mod_revision).value == b"2"


def test_update_with_a_stale_revision_raises_conflict_and_changes_nothing(store: Store) -> None:
    created = store.create("/a", b"1")
    current = store.update("/a", b"2")
    with pytest.raises(Conflict) as raised:
        store.update("/a", b"3", expected_revision=created.mod_revision)
    assert (raised.value.key, raised.value.expected, raised.value.actual) == (
        "/a",
        created.mod_revision,
        current.mod_revision,
    )
    assert store.get("/a") == current
    assert store.current_revision() == current.mod_revision


def test_update_of_a_missing_key_raises_key_not_found(store: Store) -> None:
    with pytest.raises(KeyNotFound):
        store.update("/a", b"1")
    with pytest.raises(KeyNotFound):
        store.update("/a", b"1", expected_revision=1)


def test_delete_removes_the_key_and_returns_its_last_value_at_the_deleting_revision(store: Store) -> None:
    created = store.create("/a", b"1")
    deleted = store.delete("/a")
    assert deleted == KeyValue("/a", b"1", created.create_revision, created.mod_revision + 1)
    assert store.get("/a") is None
    assert store.current_revision() == deleted.mod_revision


def test_delete_of_a_missing_key_raises_key_not_found(store: Store) -> None:
    with pytest.raises(KeyNotFound):
        store.delete("/a")


def test_delete_with_a_stale_revision_raises_conflict_and_keeps_the_key(store: Store) -> None:
    created = store.create("/a", b"1")
    current = store.update("/a", b"2")
    with pytest.raises(Conflict):
        store.delete("/a", expected_revision=created.mod_revision)
    assert store.get("/a") == current
    store.delete("/a", expected_revision=current.mod_revision)
    assert store.get("/a") is None


def test_a_recreated_key_starts_a_new_life_with_a_new_create_revision(store: Store) -> None:
    store.create("/a", b"1")
    store.delete("/a")
    again = store.create("/a", b"2")
    assert again.create_revision == again.mod_revision == store.current_revision()


def test_failed_writes_do_not_consume_revisions(store: Store) -> None:
    kv = store.create("/a", b"1")
    failing_writes: list[Callable[[], KeyValue]] = [
        lambda: store.create("/a", b"x"),
        lambda: store.update("/missing", b"x"),
        lambda: store.update("/a", b"x", expected_revision=kv.mod_revision + 100),
        lambda: store.delete("/missing"),
    ]
    for failing in failing_writes:
        with pytest.raises((KeyExists, KeyNotFound, Conflict)):
            failing()
    assert store.current_revision() == kv.mod_revision
    assert store.create("/b", b"1").mod_revision == kv.mod_revision + 1


def test_one_revision_counts_every_write_across_all_keys(store: Store) -> None:
    start = store.current_revision()
    revisions = [
        store.create("/a", b"1").mod_revision,
        store.create("/b", b"1").mod_revision,
        store.update("/a", b"2").mod_revision,
        store.delete("/b").mod_revision,
        store.create("/c/d", b"1").mod_revision,
    ]
    assert revisions == list(range(start + 1, start + 6))
    assert store.current_revision() == start + 5


# -- list -----------------------------------------------------------------------------


def test_list_returns_the_keys_under_a_prefix_sorted_by_key(store: Store) -> None:
    for name in ("web-2", "web-10", "api", "web-1"):
        store.create(f"/registry/pods/default/{name}", name.encode())
    store.create("/registry/nodes/n1", b"n")
    items, _ = store.list("/registry/pods/")
    assert [kv.key for kv in items] == [
        "/registry/pods/default/api",
        "/registry/pods/default/web-1",
        "/registry/pods/default/web-10",
        "/registry/pods/default/web-2",
    ]
    assert items[0] == store.get("/registry/pods/default/api")


def test_list_prefix_does_not_match_a_longer_sibling_name(store: Store) -> None:
    store.create("/registry/pods/a", b"1")
    store.create("/registry/podsx/b", b"2")
    store.create("/registry/pods", b"3")
    items, _ = store.list("/registry/pods/")
    assert [kv.key for kv in items] == ["/registry/pods/a"]


def test_list_with_an_empty_prefix_returns_every_key(store: Store) -> None:
    store.create("/b", b"1")
    store.create("/a", b"1")
    store.create("z", b"1")
    items, _ = store.list("")
    assert [kv.key for kv in items] == ["/a", "/b", "z"]


def test_list_handles_keys_beyond_ascii(store: Store) -> None:
    store.create("/ns/caf\u00e9", b"1")
    store.create("/ns/caf\u00e9/x", b"2")
    store.create("/ns/cag", b"3")
    items, _ = store.list("/ns/caf\u00e9")
    assert [kv.key for kv in items] == ["/ns/caf\u00e9", "/ns/caf\u00e9/x"]


def test_list_returns_the_revision_it_was_read_at(store: Store) -> None:
    store.create("/a", b"1")
    store.create("/other", b"1")
    items, revision = store.list("/a")
    assert len(items) == 1
    assert revision == store.current_revision()


def test_list_is_a_consistent_snapshot_while_a_writer_runs(store: Store) -> None:
    """The writer creates /c/0000, /c/0001, ... in order, one revision each, so every
    consistent snapshot is a gap-free run of keys whose length matches its revision."""
    base = store.current_revision()
    total = 400
    done = threading.Event()

    def writer() -> None:
        for i in range(total):
            store.create(f"/c/{i:04d}", b"x")
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    snapshots = 0
    while not done.is_set() or snapshots == 0:
        items, revision = store.list("/c/")
        assert [kv.key for kv in items] == [f"/c/{i:04d}" for i in range(len(items))]
        assert revision == base + len(items)
        snapshots += 1
    thread.join()
    assert len(store.list("/c/")[0]) == total


# -- watch ----------------------------------------------------------------------------


def test_watch_replays_history_then_delivers_live_events_in_revision_order(store: Store) -> None:
    start = store.current_revision()
    store.create("/w/a", b"1")
    store.update("/w/a", b"2")
    watch = store.watch("/w/", start)
    store.create("/w/b", b"1")
    store.delete("/w/a")
    events = collect(watch, 4)
    assert summary(events) == [
        ("PUT", "/w/a", b"1"),
        ("PUT", "/w/a", b"2"),
        ("PUT", "/w/b", b"1"),
        ("DELETE", "/w/a", b"2"),
    ]
    assert [e.revision for e in events] == list(range(start + 1, start + 5))
    watch.close()


def test_watch_starts_strictly_after_its_start_revision(store: Store) -> None:
    first = store.create("/w/a", b"1")
    store.create("/w/b", b"1")
    watch = store.watch("/w/", first.mod_revision)
    assert summary(collect(watch, 1)) == [("PUT", "/w/b", b"1")]
    assert watch.wait(timeout=0.05) == []
    watch.close()


def test_watch_of_a_prefix_sees_only_that_prefix(store: Store) -> None:
    watch = store.watch("/registry/pods/", store.current_revision())
    store.create("/registry/podsx/a", b"no")
    store.create("/registry/nodes/a", b"no")
    store.create("/registry/pods/a", b"yes")
    assert summary(collect(watch, 1)) == [("PUT", "/registry/pods/a", b"yes")]
    assert watch.wait(timeout=0.05) == []
    watch.close()


def test_watch_events_carry_the_previous_value(store: Store) -> None:
    watch = store.watch("/w/", store.current_revision())
    created = store.create("/w/a", b"1")
    updated = store.update("/w/a", b"2")
    deleted = store.delete("/w/a")
    put, update, delete = collect(watch, 3)
    assert put.created and put.prev is None and put.kv == created
    assert not update.created and update.kv == updated and update.prev == created
    assert delete.type == "DELETE"
    assert delete.kv == KeyValue("/w/a", b"2", created.create_revision, deleted.mod_revision)
    assert delete.prev == updated
    watch.close()


def test_replayed_events_carry_the_previous_value_too(store: Store) -> None:
    start = store.current_revision()
    created = store.create("/w/a", b"1")
    updated = store.update("/w/a", b"2")
    deleted = store.delete("/w/a")
    watch = store.watch("/w/", start)
    put, update, delete = collect(watch, 3)
    assert (put.kv, put.prev) == (created, None)
    assert (update.kv, update.prev) == (updated, created)
    assert (delete.type, delete.kv, delete.prev) == ("DELETE", deleted, updated)
    watch.close()


def test_replay_keeps_the_previous_value_when_its_revision_was_compacted(store: Store) -> None:
    created = store.create("/w/a", b"1")
    updated = store.update("/w/a", b"2")
    store.compact(created.mod_revision)
    watch = store.watch("/w/", created.mod_revision)
    (event,) = collect(watch, 1)
    assert (event.kv, event.prev) == (updated, created)
    watch.close()


def test_watch_from_a_compacted_revision_raises_revision_compacted(store: Store) -> None:
    store.create("/a", b"1")
    second = store.update("/a", b"2")
    store.compact(second.mod_revision)
    assert store.compacted_revision() == second.mod_revision
    with pytest.raises(RevisionCompacted) as raised:
        store.watch("/", second.mod_revision - 1)
    assert raised.value.compacted == second.mod_revision


def test_watch_from_exactly_the_compacted_revision_is_allowed(store: Store) -> None:
    compacted = store.create("/a", b"1")
    store.compact(compacted.mod_revision)
    watch = store.watch("/", compacted.mod_revision)
    store.update("/a", b"2")
    assert summary(collect(watch, 1)) == [("PUT", "/a", b"2")]
    watch.close()


def test_compaction_keeps_current_values(store: Store) -> None:
    store.create("/a", b"1")
    store.update("/a", b"2")
    store.create("/b", b"1")
    store.create("/c", b"1")
    store.delete("/c")
    before = store.list("")
    store.compact(store.current_revision())
    assert store.list("") == before
    assert [kv.key for kv in before[0]] == ["/a", "/b"]


def test_compacting_to_an_older_revision_is_a_no_op(store: Store) -> None:
    store.create("/a", b"1")
    store.create("/b", b"1")
    store.compact(2)
    store.compact(1)
    assert store.compacted_revision() == 2


def test_a_listener_is_called_when_events_arrive(store: Store) -> None:
    watch = store.watch("/w/", store.current_revision())
    woken = threading.Event()
    watch.add_listener(woken.set)
    store.create("/w/a", b"1")
    assert woken.wait(5.0)
    assert summary(watch.drain()) == [("PUT", "/w/a", b"1")]
    watch.close()


def test_a_closed_watch_ends_with_store_closed(store: Store) -> None:
    watch = store.watch("/w/", store.current_revision())
    watch.close()
    store.create("/w/a", b"1")
    with pytest.raises(StoreClosed):
        watch.drain()


def test_closing_the_store_ends_open_watches_with_store_closed(store: Store) -> None:
    watch = store.watch("/w/", store.current_revision())
    woken = threading.Event()
    watch.add_listener(woken.set)
    store.close()
    assert woken.wait(5.0)
    with pytest.raises(StoreClosed):
        watch.wait(timeout=1.0)
    with pytest.raises(StoreClosed):
        store.get("/a")


# -- concurrency ----------------------------------------------------------------------


def run_threads(count: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            target(index)
        except BaseException as error:  # surfaced below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_concurrent_writers_never_lose_or_duplicate_a_revision(store: Store) -> None:
    start = store.current_revision()
    writers, writes = 8, 50
    revisions: list[int] = []
    lock = threading.Lock()
    watch = store.watch("/t/", start)

    def write(index: int) -> None:
        for i in range(writes):
            created = store.create(f"/t/{index}/{i}", b"v")
            updated = store.update(created.key, b"w", expected_revision=created.mod_revision)
            with lock:
                revisions.extend([created.mod_revision, updated.mod_revision])

    run_threads(writers, write)
    total = writers * writes * 2
    assert sorted(revisions) == list(range(start + 1, start + total + 1))
    assert store.current_revision() == start + total
    assert [e.revision for e in collect(watch, total)] == list(range(start + 1, start + total + 1))
    watch.close()


def test_concurrent_updates_with_the_same_revision_let_exactly_one_win(store: Store) -> None:
    kv = store.create("/race", b"0")
    wins: list[int] = []

    def update(index: int) -> None:
        try:
            store.update("/race", str(index).encode(), expected_revision=kv.mod_revision)
            wins.append(index)
        except Conflict:
            pass

    run_threads(8, update)
    assert len(wins) == 1
    current = store.get("/race")
    assert current is not None and current.value == str(wins[0]).encode()


def test_a_watch_started_while_writers_run_sees_every_later_event_exactly_once(store: Store) -> None:
    """The hand-over from replay to live delivery leaves no gap and no duplicate."""
    stop = threading.Event()

    def write(index: int) -> None:
        i = 0
        while not stop.is_set():
            store.create(f"/h/{index}/{i}", b"v")
            i += 1

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        watches = []
        for _ in range(20):
            start = store.current_revision()
            watches.append((start, store.watch("/h/", max(0, start - 5))))
            time.sleep(0.002)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    end = store.current_revision()
    for start, watch in watches:
        first = max(0, start - 5) + 1
        events = collect(watch, end - first + 1)
        assert [e.revision for e in events] == list(range(first, end + 1))
        watch.close()


# -- restart --------------------------------------------------------------------------


def test_a_reopened_store_keeps_values_revision_history_and_compaction(
    backend: Backend, store_opener: Callable[[], Store]
) -> None:
    if not backend.persistent:
        pytest.skip(f"{backend.name} keeps nothing across a reopen")
    first = store_opener()
    start = first.current_revision()
    a = first.create("/a", b"1")
    first.update("/a", b"2")
    first.create("/b", b"1")
    first.delete("/b")
    first.compact(a.mod_revision)
    listed = first.list("")
    revision = first.current_revision()
    first.close()

    second = store_opener()
    assert second.list("") == listed
    assert second.current_revision() == revision
    assert second.compacted_revision() == a.mod_revision
    watch = second.watch("", a.mod_revision)
    assert summary(collect(watch, 3)) == [
        ("PUT", "/a", b"2"),
        ("PUT", "/b", b"1"),
        ("DELETE", "/b", b"1"),
    ]
    assert second.create("/c", b"1").mod_revision == revision + 1
    assert revision == start + 4
    watch.close()
