"""What SqliteStore adds beyond the contract (the contract itself: test_contract.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from sigma.store.contract import StorageFull, open_store
from sigma.store.sqlite import SqliteStore, prefix_end


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        ("/registry/pods/", "/registry/pods0"),
        ("a", "b"),
        ("", None),
        ("x\U0010ffff", "y"),
        ("\U0010ffff", None),
        ("x\ud7ff", "x\ue000"),
    ],
)
def test_prefix_end_is_the_first_string_after_every_key_with_the_prefix(prefix: str, end: str | None) -> None:
    assert prefix_end(prefix) == end


def test_auto_compact_keeps_the_requested_number_of_revisions() -> None:
    store = SqliteStore(":memory:")
    for i in range(10):
        store.create(f"/k/{i}", b"v")
    assert store.auto_compact(keep=3) == 7
    assert len(store.watch("/", 7).drain()) == 3
    assert store.auto_compact(keep=100) == 7  # never moves backwards
    store.close()


def test_compacting_beyond_the_current_revision_is_refused() -> None:
    store = SqliteStore(":memory:")
    store.create("/a", b"1")
    with pytest.raises(ValueError):
        store.compact(2)
    store.close()


def test_a_long_compaction_runs_in_steps_and_lands_on_the_target() -> None:
    store = SqliteStore(":memory:")
    for i in range(2500):
        store.create(f"/k/{i}", b"v")
    store.compact(2400)
    assert store.compacted_revision() == 2400
    assert [e.revision for e in store.watch("/", 2400).drain()] == list(range(2401, 2501))
    assert len(store.list("/k/")[0]) == 2500
    store.close()


def test_the_file_uses_wal_and_the_chosen_synchronous_level(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "state.db"), synchronous="FULL")
    store.create("/a", b"1")
    assert store._conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store._conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    store.close()


def test_an_unknown_synchronous_level_is_refused() -> None:
    level: Any = "OFF"  # not one of the Synchronous literals
    with pytest.raises(ValueError):
        SqliteStore(":memory:", synchronous=level)


def test_a_write_that_fails_inside_sqlite_leaves_no_trace(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "state.db"))
    store.create("/a", b"1")
    # A trigger makes the history insert fail after the kv row was written.
    store._conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON history WHEN NEW.key = '/bad' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    with pytest.raises(sqlite3.IntegrityError):
        store.create("/bad", b"1")
    assert store.get("/bad") is None
    assert store.current_revision() == 1
    assert store.create("/b", b"1").mod_revision == 2
    store.close()


def test_open_store_understands_sqlite_urls_and_bare_paths(tmp_path: Path) -> None:
    for url in ("sqlite://:memory:", f"sqlite://{tmp_path}/a.db", str(tmp_path / "b.db")):
        store = open_store(url)
        assert isinstance(store, SqliteStore)
        store.close()
    assert (tmp_path / "a.db").exists() and (tmp_path / "b.db").exists()


def test_a_full_database_refuses_the_write_whole_and_takes_writes_again_once_it_has_room(tmp_path: Path) -> None:
    """SQLITE_FULL (here from a page quota, as from a full disk): StorageFull, the revision
    stays, no watch hears of the write, nothing of it is stored; raising the quota is enough."""
    store = SqliteStore(str(tmp_path / "state.db"))
    try:
        store.create("/k/seed", b"x")
        watch = store.watch("/k/", store.current_revision())
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count={pages}")
        revision = store.current_revision()
        with pytest.raises(StorageFull, match="is full"):
            store.create("/k/big", b"y" * 200_000)
        with pytest.raises(StorageFull):
            store.update_many([("/k/seed", b"z" * 200_000, None)])
        assert store.current_revision() == revision
        assert watch.wait(0.1) == []
        assert store.get("/k/big") is None and store.get("/k/seed") is not None  # reads still work
        store._conn.execute(f"PRAGMA max_page_count={pages * 1000}")
        kv = store.create("/k/big", b"y" * 200_000)
        assert kv.mod_revision == revision + 1
        assert [e.kv.key for e in watch.wait(1.0)] == ["/k/big"]
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        store.close()
