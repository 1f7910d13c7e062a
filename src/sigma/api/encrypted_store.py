"""A store view that encrypts Secrets on their way in and decrypts them on their way out.

It sits between the registry and the store, as Kubernetes' storage transformers sit
between the API server and etcd: everything above it (the registry, watches, the owner
index, the controllers) sees plain objects, everything below it (the SQLite file, etcd, the
watch history) only ever holds ``k8s:enc:aesgcm:v1:...`` values for keys under
``/registry/core/secrets/``. Other keys pass through untouched, and watches and lists of
prefixes that cannot hold a Secret are the inner store's own, at no cost.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Sequence

from sigma.api.encryption import DecryptionError, Keyring
from sigma.api.resources import resource
from sigma.store.contract import (
    Conflict,
    Deletes,
    KeyNotFound,
    KeyValue,
    Route,
    Store,
    StoreError,
    Watch,
    WatchEvent,
    WriteResults,
    Writes,
)

log = logging.getLogger("sigma.api.encryption")
SECRETS_PREFIX = resource("secrets").key_prefix()


class UnreadableSecret(StoreError):
    """A stored Secret that the keyring cannot decrypt (its key was removed too early)."""


def _covers(prefix: str) -> bool:
    """Whether keys under ``prefix`` may be Secrets."""
    return prefix.startswith(SECRETS_PREFIX) or SECRETS_PREFIX.startswith(prefix)


class EncryptedStore(Store):
    def __init__(self, inner: Store, keyring: Keyring) -> None:
        self.inner = inner
        self.keyring = keyring

    # -- the transform ----------------------------------------------------------------------
    def _seal(self, key: str, value: bytes) -> bytes:
        return self.keyring.encrypt(value, key.encode()) if key.startswith(SECRETS_PREFIX) else value

    def _open(self, kv: KeyValue) -> KeyValue:
        if not kv.key.startswith(SECRETS_PREFIX):
            return kv
        try:
            plain = self.keyring.decrypt(kv.value, kv.key.encode())
        except DecryptionError as err:
            raise UnreadableSecret(str(err)) from None
        return KeyValue(kv.key, plain, kv.create_revision, kv.mod_revision)

    def _open_event(self, ev: WatchEvent) -> WatchEvent:
        if not ev.kv.key.startswith(SECRETS_PREFIX):
            return ev
        return WatchEvent(ev.type, self._open(ev.kv), self._open(ev.prev) if ev.prev is not None else None)

    def _opened(self, kv: KeyValue, plain: bytes) -> KeyValue:
        return KeyValue(kv.key, plain, kv.create_revision, kv.mod_revision)

    # -- reads ------------------------------------------------------------------------------
    def get(self, key: str) -> KeyValue | None:
        kv = self.inner.get(key)
        return self._open(kv) if kv is not None else None

    def get_many(self, keys: Sequence[str]) -> builtins.list[KeyValue | None]:
        return [self._open(kv) if kv is not None else None for kv in self.inner.get_many(keys)]

    def list(self, prefix: str) -> tuple[builtins.list[KeyValue], int]:
        kvs, revision = self.inner.list(prefix)
        if not _covers(prefix):
            return kvs, revision
        return [self._open(kv) for kv in kvs], revision

    def list_containing(self, prefix: str, needle: bytes) -> builtins.list[KeyValue]:
        if not _covers(prefix):
            return self.inner.list_containing(prefix, needle)
        # Ciphertext holds no needle: the Secrets are decrypted, then filtered.
        return [kv for kv in self.list(prefix)[0] if needle in kv.value]

    # -- writes -----------------------------------------------------------------------------
    def create(self, key: str, value: bytes) -> KeyValue:
        return self._opened(self.inner.create(key, self._seal(key, value)), value)

    def update(self, key: str, value: bytes, expected_revision: int | None = None) -> KeyValue:
        return self._opened(self.inner.update(key, self._seal(key, value), expected_revision), value)

    def update_many(self, writes: Writes) -> WriteResults:
        results = self.inner.update_many([(k, self._seal(k, v), rev) for k, v, rev in writes])
        return [self._opened(r, v) if isinstance(r, KeyValue) else r
                for r, (_, v, _) in zip(results, writes, strict=True)]

    def delete(self, key: str, expected_revision: int | None = None) -> KeyValue:
        return self._open(self.inner.delete(key, expected_revision))

    def delete_many(self, deletes: Deletes) -> WriteResults:
        return [self._open(r) if isinstance(r, KeyValue) else r for r in self.inner.delete_many(deletes)]

    # -- watches and the rest ---------------------------------------------------------------
    def watch(self, prefix: str, start_revision: int, route: Route | None = None) -> Watch:
        inner = self.inner.watch(prefix, start_revision, route)
        return DecryptingWatch(inner, self._open_event) if _covers(prefix) else inner

    def compact(self, revision: int) -> None:
        self.inner.compact(revision)

    def current_revision(self) -> int:
        return self.inner.current_revision()

    def compacted_revision(self) -> int:
        return self.inner.compacted_revision()

    def close(self) -> None:
        self.inner.close()


class DecryptingWatch(Watch):
    """The inner store's watch, its Secret events decrypted as they are taken."""

    def __init__(self, inner: Watch, open_event: Callable[[WatchEvent], WatchEvent]) -> None:
        # Not Watch.__init__: the queue, the condition and the listeners are the inner watch's.
        self._inner = inner
        self._open_event = open_event
        self.prefix, self.route = inner.prefix, inner.route

    @property
    def accepts(self) -> Callable[[WatchEvent], bool] | None:
        return self._inner.accepts

    @accepts.setter
    def accepts(self, test: Callable[[WatchEvent], bool] | None) -> None:
        # A consumer's filter reads plain values (label selectors on a Secret watch).
        opened = self._open_event
        self._inner.accepts = None if test is None else (lambda ev: test(opened(ev)))

    def add_listener(self, listener: Callable[[], None]) -> None:
        self._inner.add_listener(listener)

    def drain(self) -> builtins.list[WatchEvent]:
        return [self._open_event(ev) for ev in self._inner.drain()]

    def wait(self, timeout: float | None = None) -> builtins.list[WatchEvent]:
        return [self._open_event(ev) for ev in self._inner.wait(timeout)]

    def close(self) -> None:
        self._inner.close()

    @property
    def closed(self) -> bool:
        return self._inner.closed


def reencrypt(store: Store, keyring: Keyring) -> int:
    """Rewrite every stored Secret that is in plain or under an older key with the write
    key (the startup step of a key rotation); how many were rewritten. A Secret written
    meanwhile by someone else is left: that write already used the write key."""
    kvs, _ = store.list(SECRETS_PREFIX)
    done = 0
    for kv in kvs:
        if not keyring.needs_rewrite(kv.value):
            continue
        try:
            plain = keyring.decrypt(kv.value, kv.key.encode())
            store.update(kv.key, keyring.encrypt(plain, kv.key.encode()), kv.mod_revision)
            done += 1
        except (Conflict, KeyNotFound):
            continue
        except DecryptionError as err:
            log.error("secret %s cannot be re-encrypted: %s", kv.key, err)  # one bad value stops nothing
    return done
