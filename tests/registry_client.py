"""A client of the API's own rules without a server: a registry on an in-memory store with
admission installed and the cluster's bootstrap objects in it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sigma.api import admission
from sigma.api.registry import Registry
from sigma.client.local import LocalClient
from sigma.store.sqlite import SqliteStore


@contextmanager
def admitted_registry() -> Iterator[Registry]:
    store = SqliteStore(":memory:")
    registry = Registry(store)
    admission.install(registry)
    admission.bootstrap(registry)
    try:
        yield registry
    finally:
        store.close()


@contextmanager
def admitted_client() -> Iterator[LocalClient]:
    with admitted_registry() as registry:
        yield LocalClient(registry)
