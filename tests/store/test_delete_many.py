"""Store.delete_many: a batch of independent deletes (one commit on SQLite, Txns in flight
together on etcd), each its own revision and its own DELETE event."""

from __future__ import annotations

from sigma.store.contract import Conflict, KeyNotFound, KeyValue, Store


def test_each_delete_of_a_batch_succeeds_or_fails_on_its_own(store: Store) -> None:
    a = store.create("/d/a", b"a0")
    b = store.create("/d/b", b"b0")
    watch = store.watch("/d/", store.current_revision())
    results = store.delete_many([("/d/a", a.mod_revision), ("/d/b", b.mod_revision - 1), ("/d/missing", None)])
    assert isinstance(results[0], KeyValue) and results[0].value == b"a0"
    assert isinstance(results[1], Conflict) and isinstance(results[2], KeyNotFound)
    assert store.get("/d/a") is None and store.get("/d/b") == b
    events = watch.wait(5)
    assert [(e.type, e.kv.key, e.prev.value if e.prev else None) for e in events] == [("DELETE", "/d/a", b"a0")]
    watch.close()


def test_a_batch_takes_one_revision_per_delete(store: Store) -> None:
    created = [store.create(f"/d/{i:03d}", b"0") for i in range(200)]
    results = store.delete_many([(kv.key, kv.mod_revision) for kv in created])
    got = sorted(r.mod_revision for r in results if isinstance(r, KeyValue))
    last = created[-1].mod_revision
    assert got == list(range(last + 1, last + 201)) and store.current_revision() == got[-1]
    assert store.list("/d/")[0] == []


def test_an_empty_batch_deletes_nothing(store: Store) -> None:
    before = store.current_revision()
    assert store.delete_many([]) == [] and store.current_revision() == before
