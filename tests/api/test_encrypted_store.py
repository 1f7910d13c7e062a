"""Secrets encrypted below the registry: the SQLite file never holds their plaintext, and
everything above the store (get, list, watch, selectors, deletes) sees plain objects."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigma.api import admission
from sigma.api.encrypted_store import SECRETS_PREFIX, EncryptedStore, reencrypt
from sigma.api.encryption import PREFIX, load_keyring, rotate_key
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.store.sqlite import SqliteStore

SECRETS, CONFIG_MAPS = resource("secrets"), resource("configmaps")
PLAIN = "s3cr3t-Plaintext-7f1c"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Registry, SqliteStore, Path]]:
    raw = SqliteStore(str(tmp_path / "state.db"))
    registry = Registry(EncryptedStore(raw, load_keyring(tmp_path)))
    admission.install(registry)
    admission.bootstrap(registry)
    try:
        yield registry, raw, tmp_path
    finally:
        raw.close()


def secret(name: str, **extra: object) -> dict[str, object]:
    return {"metadata": {"name": name, "labels": {"app": "db"}}, "stringData": {"password": PLAIN}, **extra}


def file_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.glob("state.db*"))


def test_the_store_file_never_holds_the_plaintext(setup: tuple[Registry, SqliteStore, Path]) -> None:
    registry, raw, directory = setup
    registry.create(SECRETS, "default", secret("db"))
    registry.patch(SECRETS, "default", "db", "merge", {"stringData": {"other": PLAIN + "2"}})
    stored = raw.get(SECRETS.key("default", "db"))
    assert stored is not None and stored.value.startswith(PREFIX + b"key1:")
    raw.close()  # the WAL checkpointed into the file
    content = file_bytes(directory)
    assert PLAIN.encode() not in content
    assert base64.b64encode(PLAIN.encode()) not in content
    assert b'"password"' not in content


def test_reads_lists_and_selectors_see_plain_objects(setup: tuple[Registry, SqliteStore, Path]) -> None:
    registry, _, _ = setup
    registry.create(SECRETS, "default", secret("db"))
    got = registry.get(SECRETS, "default", "db")
    assert base64.b64decode(got["data"]["password"]).decode() == PLAIN and "stringData" not in got
    listed = registry.list(SECRETS, "default", label_selector="app=db")
    assert [s["metadata"]["name"] for s in listed["items"]] == ["db"]
    assert registry.list(SECRETS, None, label_selector="app=web")["items"] == []


def test_watches_decrypt_events_and_filter_on_plain_labels(setup: tuple[Registry, SqliteStore, Path]) -> None:
    registry, _, _ = setup
    rv = registry.list(SECRETS, "default")["metadata"]["resourceVersion"]
    watch = registry.watch(SECRETS, "default", rv, label_selector="app=db")
    unselected = registry.watch(SECRETS, "default", rv)
    try:
        registry.create(SECRETS, "default", secret("db"))
        registry.create(SECRETS, "default", {"metadata": {"name": "other"}, "stringData": {"k": "v"}})
        events = watch.wait(2.0)
        assert [(e.type, e.object["metadata"]["name"]) for e in events] == [("ADDED", "db")]
        lines = b"".join(unselected.drain_lines())
        assert PLAIN.encode() not in lines and base64.b64encode(PLAIN.encode()) in lines
    finally:
        watch.close()
        unselected.close()


def test_other_kinds_are_stored_as_they_are(setup: tuple[Registry, SqliteStore, Path]) -> None:
    registry, raw, _ = setup
    registry.create(CONFIG_MAPS, "default", {"metadata": {"name": "cfg"}, "data": {"k": PLAIN}})
    stored = raw.get(CONFIG_MAPS.key("default", "cfg"))
    assert stored is not None and PLAIN.encode() in stored.value


def test_deleting_a_namespace_reads_its_secrets(setup: tuple[Registry, SqliteStore, Path]) -> None:
    registry, raw, _ = setup
    registry.create(resource("namespaces"), None, {"metadata": {"name": "team"}})
    registry.create(SECRETS, "team", secret("db"))
    registry.delete(SECRETS, "team", "db")
    assert raw.list(SECRETS_PREFIX)[0] == []


def test_rotation_re_encrypts_every_secret_with_the_new_key(setup: tuple[Registry, SqliteStore, Path]) -> None:
    registry, raw, directory = setup
    registry.create(SECRETS, "default", secret("a"))
    registry.create(SECRETS, "default", secret("b"))
    rotate_key(directory)
    keyring = load_keyring(directory)
    assert reencrypt(raw, keyring) == 2
    assert all(kv.value.startswith(PREFIX + b"key2:") for kv in raw.list(SECRETS_PREFIX)[0])
    assert reencrypt(raw, keyring) == 0
    fresh = Registry(EncryptedStore(raw, keyring))
    assert base64.b64decode(fresh.get(SECRETS, "default", "a")["data"]["password"]).decode() == PLAIN
