"""Store.update_many: a batch of independent compare-and-swaps (one commit on SQLite)."""

from __future__ import annotations

from sigma.store.contract import Conflict, KeyNotFound, KeyValue, Store


def test_each_write_of_a_batch_succeeds_or_fails_on_its_own(store: Store) -> None:
    a = store.create("/k/a", b"a0")
    b = store.create("/k/b", b"b0")
    watch = store.watch("/k/", store.current_revision())
    results = store.update_many([("/k/a", b"a1", a.mod_revision), ("/k/b", b"b1", b.mod_revision - 1),
                                 ("/k/missing", b"x", None)])
    assert isinstance(results[0], KeyValue) and results[0].value == b"a1"
    assert isinstance(results[1], Conflict) and isinstance(results[2], KeyNotFound)
    assert store.get("/k/b") == b  # the conflicting write changed nothing
    events = watch.wait(5)
    assert [(e.kv.key, e.kv.value, e.prev.value if e.prev else None) for e in events] == [("/k/a", b"a1", b"a0")]
    watch.close()


def test_a_batch_takes_one_revision_per_write(store: Store) -> None:
    # The writes are independent: a store may apply them in any order (etcd spreads them
    # over several connections), but each takes a revision of its own.
    revs = [store.create(f"/k/{i}", b"0").mod_revision for i in range(3)]
    results = store.update_many([(f"/k/{i}", b"1", rev) for i, rev in enumerate(revs)])
    got = [r.mod_revision for r in results if isinstance(r, KeyValue)]
    assert sorted(got) == [revs[-1] + 1, revs[-1] + 2, revs[-1] + 3] and store.current_revision() == max(got)
    assert [r.key for r in results if isinstance(r, KeyValue)] == [f"/k/{i}" for i in range(3)]


def test_an_empty_batch_writes_nothing(store: Store) -> None:
    before = store.current_revision()
    assert store.update_many([]) == [] and store.current_revision() == before
