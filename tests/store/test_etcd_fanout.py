"""EtcdStore specifics behind the contract: watches sharing one etcd stream per prefix
(etcd_fanout.py), batched reads and concurrent writes, and a connection replaced after an
etcd restart."""

from __future__ import annotations

import pytest

from sigma.store.contract import KeyValue, StoreClosed, Watch, WatchEvent
from sigma.store.etcd import EtcdStore, Fenced
from sigma.store.etcd_server import EtcdServer, etcd_binary

pytestmark = [pytest.mark.skipif(etcd_binary() is None, reason="etcd is not installed"), pytest.mark.e2e]


def collect(watch: Watch, count: int, timeout: float = 5.0) -> list[WatchEvent]:
    events: list[WatchEvent] = []
    for _ in range(int(timeout / 0.1)):
        events += watch.wait(0.1)
        if len(events) >= count:
            break
    return events


def changes(events: list[WatchEvent]) -> list[tuple[str, str, bytes]]:
    return [(e.type, e.kv.key, e.kv.value) for e in events]


def test_watches_on_one_prefix_share_one_etcd_stream_and_see_the_same_events(etcd_store: EtcdStore) -> None:
    start = etcd_store.current_revision()
    broad = etcd_store.watch("/registry/pods/", start)
    other = etcd_store.watch("/registry/pods/", start)
    narrow = etcd_store.watch("/registry/pods/a/", start)  # served by the broader feed, filtered
    assert len(etcd_store._all_feeds) == 1
    etcd_store.create("/registry/pods/a/x", b"1")
    etcd_store.create("/registry/pods/b/y", b"2")
    etcd_store.update("/registry/pods/a/x", b"3")
    etcd_store.delete("/registry/pods/b/y")
    expected = [("PUT", "/registry/pods/a/x", b"1"), ("PUT", "/registry/pods/b/y", b"2"),
                ("PUT", "/registry/pods/a/x", b"3"), ("DELETE", "/registry/pods/b/y", b"2")]
    assert changes(collect(broad, 4)) == expected
    assert changes(collect(other, 4)) == expected
    assert changes(collect(narrow, 2)) == [e for e in expected if e[1].startswith("/registry/pods/a/")]


def test_a_watch_from_a_recent_revision_joins_the_feed_without_gap_or_duplicate(etcd_store: EtcdStore) -> None:
    first = etcd_store.watch("/k/", etcd_store.current_revision())
    kvs = [etcd_store.create(f"/k/{i}", str(i).encode()) for i in range(5)]
    assert len(collect(first, 5)) == 5
    # Resume from the third write, as a client that saw two events would.
    late = etcd_store.watch("/k/", kvs[1].mod_revision)
    assert len(etcd_store._all_feeds) == 1
    etcd_store.create("/k/5", b"5")
    assert [e.kv.key for e in collect(late, 4)] == ["/k/2", "/k/3", "/k/4", "/k/5"]
    assert late.wait(0.2) == []


def test_a_watch_from_before_the_feed_gets_etcd_history_on_a_stream_of_its_own(etcd_store: EtcdStore) -> None:
    before = etcd_store.current_revision()
    etcd_store.create("/h/a", b"1")
    feed_watch = etcd_store.watch("/h/", etcd_store.current_revision())
    old = etcd_store.watch("/h/", before)
    assert len(etcd_store._all_feeds) == 2
    etcd_store.create("/h/b", b"2")
    assert [e.kv.key for e in collect(old, 2)] == ["/h/a", "/h/b"]
    assert [e.kv.key for e in collect(feed_watch, 1)] == ["/h/b"]
    old.close()
    assert len(etcd_store._all_feeds) == 1  # the private stream ends with its one watch


def test_closing_the_store_ends_every_shared_watch(etcd_store: EtcdStore) -> None:
    watches = [etcd_store.watch("/c/", etcd_store.current_revision()) for _ in range(3)]
    etcd_store.close()
    for watch in watches:
        with pytest.raises(StoreClosed):
            watch.wait(1.0)


def test_get_many_and_update_many_span_several_txns(etcd_store: EtcdStore) -> None:
    keys = [f"/m/{i:04d}" for i in range(300)]  # more than one Txn's 128 operations
    created = [etcd_store.create(key, b"0") for key in keys]
    assert etcd_store.get_many([*keys, "/m/missing"]) == [*created, None]
    results = etcd_store.update_many([(kv.key, b"1", kv.mod_revision) for kv in created])
    revisions = [r.mod_revision for r in results if isinstance(r, KeyValue)]
    # All in flight at once: one revision each, in whatever order etcd applied them.
    assert sorted(revisions) == list(range(created[-1].mod_revision + 1, created[-1].mod_revision + 301))
    assert [r.value for r in results if isinstance(r, KeyValue)] == [b"1"] * 300
    assert [kv.mod_revision for kv in etcd_store.get_many(keys)] == revisions  # each answer is its own key's
    assert all(isinstance(r, KeyValue) and r.create_revision == kv.create_revision
               for r, kv in zip(results, created, strict=True))


def test_update_many_through_a_fenced_view_is_refused_once_the_term_ends(etcd_store: EtcdStore) -> None:
    leader = etcd_store.create("/sigma/leader", b"me")
    kv = etcd_store.create("/f/a", b"0")
    fenced = etcd_store.fenced("/sigma/leader", leader.create_revision + 1)  # etcd's numbering
    written = fenced.update_many([("/f/a", b"1", kv.mod_revision)])
    assert isinstance(written[0], KeyValue) and written[0].value == b"1"
    etcd_store.delete("/sigma/leader")
    etcd_store.create("/sigma/leader", b"someone else")
    with pytest.raises(Fenced):
        fenced.update_many([("/f/a", b"2", written[0].mod_revision)])
    assert etcd_store.get("/f/a") == written[0]


def test_the_connection_survives_an_etcd_restart(etcd: EtcdServer, etcd_store: EtcdStore) -> None:
    kv = etcd_store.create("/r/a", b"1")  # leaves the store's connection open
    etcd.stop()
    etcd.start()
    # That connection is dead: it must be noticed before a write goes out on it, not
    # reported as "the write may have been applied".
    assert etcd_store.update("/r/a", b"2", kv.mod_revision).value == b"2"
    assert etcd_store.get("/r/a") is not None


def test_previous_values_come_from_the_state_read_at_the_feeds_start(etcd_store: EtcdStore) -> None:
    # The shared stream asks etcd for no prev_kv: a key written before the watch started
    # must still show its old value in the events' prev and in its DELETE.
    for i in range(3):
        etcd_store.create(f"/v/{i}", b"old")
    watch = etcd_store.watch("/v/", etcd_store.current_revision())
    etcd_store.update("/v/1", b"new")
    etcd_store.delete("/v/1")
    etcd_store.create("/v/1", b"again")
    events = collect(watch, 3)
    assert [(e.type, e.kv.value, e.prev.value if e.prev else None) for e in events] == [
        ("PUT", b"new", b"old"), ("DELETE", b"new", b"new"), ("PUT", b"again", None)]
    assert events[2].created
