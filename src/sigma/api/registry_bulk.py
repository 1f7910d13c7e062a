"""Deleting many objects at once: delete-collection, cascades and the garbage collector.

Deleting one object at a time costs one store commit per object and, for each, a scan of
every stored object for its dependents: a Deployment with 30,000 pods took hours. Here the
objects go in store batches (``Store.delete_many`` / ``update_many``: one transaction of up
to BATCH objects on SQLite, Txns in flight together on etcd), each still its own revision
and its own DELETE (or MODIFIED, for a pod that terminates gracefully) watch event, and the
dependents of a whole batch of owners are found in one scan. Between batches the store's
lock is free, so the API keeps answering while a big deletion runs.

The rules are the registry's (sigma.api.registry_delete): a pod bound to a node is marked
for graceful deletion and left to its agent, an object with finalizers is only marked, the
rest is removed; a write that loses a race (Conflict) is retried through the registry's own
one-object delete, which re-reads the object.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from sigma.api.errors import ApiError
from sigma.api.objects import now_rfc3339
from sigma.api.resources import RESOURCES, ResourceType
from sigma.store.contract import Conflict, KeyNotFound, KeyValue, Store, StoreError

if TYPE_CHECKING:
    from sigma.api.registry_delete import Deletion

log = logging.getLogger("sigma.registry")

REGISTRY_PREFIX = "/registry/"
BATCH = 500  # objects per store transaction: the longest the store's lock is held at a time
# Between batches the deleting thread sleeps this long: the API's event loop (and the
# controllers) get the interpreter and the store at once instead of at the next switch.
YIELD_S = 0.002
NOT_OWNERS = frozenset({"Event", "Lease", "Namespace"})  # never dependents of anything
_UID = re.compile(rb'"uid":\s*"([^"]+)"')
_OWNER_REFS = b'"ownerReferences"'
_OWNER_SEGMENT = re.compile(rb'"ownerReferences":\s*\[(.*?)\]', re.S)
INDEX_CATCH_UP_S = 0.5  # how long a lookup waits for the index to reach the store's revision


def owner_uids(value: bytes) -> frozenset[str]:
    """The uids an object's stored bytes name in metadata.ownerReferences (no decoding)."""
    if _OWNER_REFS not in value:
        return frozenset()
    found = _OWNER_SEGMENT.search(value)
    return frozenset(u.decode() for u in _UID.findall(found.group(1))) if found else frozenset()


class OwnerIndex:
    """Owner uid -> keys of the objects that reference it, kept from a watch of the whole
    registry (so writes through any master are seen). Deleting one object then finds its
    dependents by lookup instead of reading every stored object: with 30,000 pods, each
    delete read them all (0.1-0.6 s a delete, the garbage collector's 1 pod per second).
    Until it has listed, and whenever its watch has failed, lookups say None and the
    caller scans."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._by_owner: dict[str, set[str]] = {}
        self._owners_of: dict[str, frozenset[str]] = {}
        self.revision = -1  # the store revision the index reflects; -1: not usable
        threading.Thread(target=self._run, name="owner-index", daemon=True).start()

    def _set(self, key: str, owners: frozenset[str]) -> None:
        old = self._owners_of.pop(key, frozenset())
        for uid in old - owners:
            keys = self._by_owner.get(uid)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_owner[uid]
        if owners:
            self._owners_of[key] = owners
            for uid in owners - old:
                self._by_owner.setdefault(uid, set()).add(key)

    def _run(self) -> None:
        try:
            kvs, revision = self.store.list(REGISTRY_PREFIX)
            with self._lock:
                for kv in kvs:
                    self._set(kv.key, owner_uids(kv.value))
                self.revision = revision
            watch = self.store.watch(REGISTRY_PREFIX, revision)
            try:
                while True:
                    events = watch.wait(1.0)
                    if not events:
                        continue
                    with self._lock:
                        for event in events:
                            owners = frozenset() if event.type == "DELETE" else owner_uids(event.kv.value)
                            self._set(event.kv.key, owners)
                        self.revision = events[-1].revision
            finally:
                watch.close()
        except StoreError:
            pass  # closed, compacted past us, unavailable: lookups fall back to scanning
        except Exception:
            log.exception("the owner index stopped; dependents are found by scanning")
        self.revision = -1

    def keys_of(self, uid: str) -> set[str] | None:
        """Keys of the objects referencing ``uid`` as of now, or None when unknown."""
        try:
            target = self.store.current_revision()
        except StoreError:
            return None
        deadline = time.monotonic() + INDEX_CATCH_UP_S
        while 0 <= self.revision < target and time.monotonic() < deadline:
            time.sleep(0.002)
        with self._lock:
            if self.revision < target:
                return None
            return set(self._by_owner.get(uid, ()))


_indexes: weakref.WeakKeyDictionary[Store, OwnerIndex] = weakref.WeakKeyDictionary()
_indexes_lock = threading.Lock()


def owner_index(store: Store) -> OwnerIndex:
    base = getattr(store, "base", store)  # a fenced etcd view shares its store's index
    with _indexes_lock:
        index = _indexes.get(base)
        if index is None:
            index = _indexes[base] = OwnerIndex(base)
        return index


def batches(items: list[Any], size: int = BATCH) -> Iterator[list[Any]]:
    for first in range(0, len(items), size):
        if first:
            time.sleep(YIELD_S)
        yield items[first:first + size]


def delete_objects(registry: Deletion, rt: ResourceType, objects: list[dict[str, Any]], grace: int | None = None,
                   propagation: str | None = None) -> list[dict[str, Any]]:
    """Delete (or mark for graceful deletion) each object as read (its resourceVersion is
    the precondition), then cascade to the dependents of those removed. Returns what a
    one-by-one delete would have returned for each object still there."""
    out: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    for batch in batches(objects):
        done, gone = _delete_batch(registry, rt, batch, grace, propagation)
        out.extend(done)
        removed.extend(gone)
    cascade(registry, rt, removed, propagation or "Background")
    registry.finish_namespaces(rt, removed)
    return out


def _delete_batch(registry: Deletion, rt: ResourceType, objects: list[dict[str, Any]], grace: int | None,
                  propagation: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(results, objects removed from the store), for one batch."""
    removals: list[dict[str, Any]] = []
    marks: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (as read, as marked)
    results: list[dict[str, Any]] = []
    retry: list[dict[str, Any]] = []
    for obj in objects:
        m = obj["metadata"]
        if rt.kind == "Namespace":
            retry.append(obj)  # emptying a namespace is the registry's one-object path
            continue
        marked = _graceful_mark(registry, rt, obj, grace)
        if marked is None:
            removals.append(obj)
        elif marked is obj:
            results.append(obj)  # already terminating sooner than asked
        else:
            marks.append((obj, marked))
        registry._changed(rt, m.get("namespace"), m["name"])
    gone: list[dict[str, Any]] = []
    if removals:
        answers = registry.store.delete_many([(rt.key(o["metadata"].get("namespace"), o["metadata"]["name"]),
                                               _revision(o)) for o in removals])
        for obj, answer in zip(removals, answers, strict=True):
            if isinstance(answer, KeyValue):
                results.append(obj)
                gone.append(obj)
            elif isinstance(answer, Conflict):
                retry.append(obj)
            elif not isinstance(answer, KeyNotFound):
                raise answer
    if marks:
        answers = registry.store.update_many([(rt.key(new["metadata"].get("namespace"), new["metadata"]["name"]),
                                               registry._to_bytes(new), _revision(old)) for old, new in marks])
        for (old, new), answer in zip(marks, answers, strict=True):
            if isinstance(answer, KeyValue):
                new["metadata"]["resourceVersion"] = str(answer.mod_revision)
                results.append(new)
            elif isinstance(answer, Conflict):
                retry.append(old)
            elif not isinstance(answer, KeyNotFound):
                raise answer
    for obj in retry:  # changed since it was read: the registry reads it again and decides
        m = obj["metadata"]
        try:
            results.append(registry.delete(rt, m.get("namespace"), m["name"], grace, propagation,
                                           precondition_uid=m.get("uid")))
        except ApiError as err:
            if err.code not in (404, 409):
                raise
    return results, gone


def _revision(obj: dict[str, Any]) -> int | None:
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return None


def _graceful_mark(registry: Deletion, rt: ResourceType, obj: dict[str, Any],
                   requested: int | None) -> dict[str, Any] | None:
    """None when the object goes at once; ``obj`` itself when it is already terminating
    within the grace asked; otherwise a copy marked for graceful deletion (the same rule as
    the registry's one-object delete)."""
    m = obj["metadata"]
    grace = registry._grace(rt, obj, requested)
    if grace <= 0 and not m.get("finalizers"):
        return None
    marked = json.loads(json.dumps(obj))
    mm = marked["metadata"]
    if grace > 0:
        current = m.get("deletionGracePeriodSeconds")
        if current is not None and current <= grace:
            return obj
        mm["deletionTimestamp"] = now_rfc3339(registry.clock() + grace)
        mm["deletionGracePeriodSeconds"] = grace
    elif not m.get("deletionTimestamp"):
        mm["deletionTimestamp"] = now_rfc3339(registry.clock())
        mm["deletionGracePeriodSeconds"] = 0
    else:
        return obj
    return marked  # type: ignore[no-any-return]


def cascade(registry: Deletion, owner_rt: ResourceType, owners: list[dict[str, Any]], propagation: str) -> None:
    """Background and Foreground delete the dependents of ``owners`` (removed from the
    store), level by level, each level found in one scan; Orphan strips the references."""
    while owners:
        uids = {str(o["metadata"].get("uid")) for o in owners if o["metadata"].get("uid")}
        # Namespaced owners have their dependents in their own namespace.
        namespaces = {o["metadata"].get("namespace") or None for o in owners}
        scope = next(iter(namespaces)) if len(namespaces) == 1 else None
        next_owners: list[dict[str, Any]] = []
        for dep_rt, deps in dependents_of(registry, uids, scope):
            if propagation == "Orphan":
                for dep in deps:
                    _orphan(registry, dep_rt, dep, uids)
            else:
                next_owners.extend(delete_many_shallow(registry, dep_rt, deps, propagation))
        owners = next_owners


def delete_many_shallow(registry: Deletion, rt: ResourceType, objects: list[dict[str, Any]],
                        propagation: str) -> list[dict[str, Any]]:
    """Delete a level of dependents in batches without cascading (the caller cascades the
    next level); returns those removed from the store."""
    removed: list[dict[str, Any]] = []
    for batch in batches(objects):
        _, gone = _delete_batch(registry, rt, batch, None, propagation)
        removed.extend(gone)
    return removed


def _orphan(registry: Deletion, rt: ResourceType, dep: dict[str, Any], uids: set[str]) -> None:
    dm = dep["metadata"]
    refs = [r for r in dm.get("ownerReferences") or [] if r.get("uid") not in uids]
    try:
        registry.patch(rt, dm.get("namespace"), dm["name"], "merge", {"metadata": {"ownerReferences": refs or None}})
    except ApiError as err:
        if err.code != 404:
            raise


def dependents_of(registry: Deletion, uids: set[str], namespace: str | None
                  ) -> Iterable[tuple[ResourceType, list[dict[str, Any]]]]:
    """Objects with an ownerReference to any of ``uids``, by kind, in one scan. Only stored
    values that mention owner references and one of the uids are decoded."""
    if not uids:
        return []
    one = next(iter(uids)).encode() if len(uids) == 1 else None
    indexed = owner_index(registry.store).keys_of(next(iter(uids))) if one is not None else None
    out = []
    for rt in RESOURCES:
        if rt.kind in NOT_OWNERS:
            continue
        prefix = rt.key_prefix(namespace if rt.namespaced else None)
        if indexed is not None:  # one owner, and the index knows its dependents
            keys = sorted(k for k in indexed if k.startswith(prefix))
            kvs = [kv for kv in registry.store.get_many(keys) if kv is not None] if keys else []
        elif one is not None:  # one owner: the store filters on its uid
            kvs = registry.store.list_containing(prefix, one)
        else:
            kvs = registry.store.list(prefix)[0]
        found = []
        for kv in kvs:
            value = kv.value
            if _OWNER_REFS not in value:
                continue
            if one is not None:
                if one not in value:
                    continue
            elif not any(u.decode() in uids for u in _UID.findall(value)):
                continue
            obj = registry._from_kv(kv)
            if any(ref.get("uid") in uids for ref in obj["metadata"].get("ownerReferences") or []):
                found.append(obj)
        if found:
            out.append((rt, found))
    return out
