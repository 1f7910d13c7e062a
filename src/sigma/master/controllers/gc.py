"""The garbage collector's sweep: dependents whose owners are gone.

The registry cascades a delete to the owner's dependents at once, in the same request. A
master that crashes in the middle of that cascade leaves dependents pointing at an owner that
no longer exists; this sweep, run at start-up and then periodically, finishes the job. An
object whose every ownerReference names a missing owner (or an owner of the same name but a
different uid: a new object, not the owner) is deleted; one with some live owners left just
loses the dangling references, as Kubernetes' garbage collector does.

Owners of a kind Sigma does not serve cannot be checked, so those references count as live.

It also deletes Terminating namespaces again (finishing one whose last pod is gone), and
finishes foreground deletions a crash interrupted: an owner being deleted
with the finalizer ``foregroundDeletion`` that no dependent blocks any longer loses that
finalizer (and so goes), as the registry does when it deletes the last blocking dependent.
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.registry_bulk import delete_objects
from sigma.api.registry_delete import FOREGROUND
from sigma.api.resources import RESOURCES, ResourceType, by_kind
from sigma.client.base import ApiClient
from sigma.master.controllers.periodic import run_periodic
from sigma.master.guard import guarded

log = logging.getLogger("sigma.gc")

COMPONENT = "garbage-collector"

SWEEP_EVERY_S = 60.0
# Events and Leases are never owned by anything the registry cascades from.
SKIP_KINDS = frozenset({"Event", "Lease"})

OwnerKey = tuple[str, str, str, str]  # (apiVersion, kind, namespace, name)


class GarbageCollector:
    name = "garbagecollector"

    def __init__(self, client: ApiClient, period_s: float = SWEEP_EVERY_S) -> None:
        self.client = client
        self.period_s = period_s

    def run(self, stop: threading.Event) -> None:
        run_periodic(stop, self.sweep, self.period_s, "garbage collection sweep", log)

    def sweep(self) -> list[tuple[str, str, str]]:
        """One pass over every namespaced kind; returns the (plural, namespace, name) deleted.
        Dependents are listed before their owners are looked up, so an owner created after
        the listing (with its dependents, after it) is never mistaken for a missing one."""
        owners: dict[OwnerKey, str | None] = {}
        deleted: list[tuple[str, str, str]] = []
        blocked: set[str] = set()  # uids some dependent blocks (blockOwnerDeletion)
        waiting: list[tuple[ResourceType, dict[str, Any]]] = []  # owners in foreground deletion
        for rt in RESOURCES:
            if not rt.namespaced or rt.kind in SKIP_KINDS:
                continue
            orphans: list[dict[str, Any]] = []
            for obj in self.client.list(rt.plural)["items"]:
                m = obj["metadata"]
                refs = m.get("ownerReferences") or []
                if isinstance(refs, list):
                    blocked.update(r.get("uid", "") for r in refs
                                   if isinstance(r, dict) and r.get("blockOwnerDeletion") is True)
                if m.get("deletionTimestamp") and FOREGROUND in (m.get("finalizers") or []):
                    waiting.append((rt, obj))
                if not m.get("ownerReferences") or m.get("deletionTimestamp"):
                    continue
                # An object whose references cannot be read is reported on, never collected,
                # and the sweep goes on with the others.
                if guarded(self.client, {"kind": rt.kind, "apiVersion": rt.api_version, **obj}, COMPONENT,
                           "FailedGarbageCollection", partial(self._sweep_one, rt, obj, owners), "collecting"):
                    orphans.append(obj)
            deleted.extend((rt.plural, o["metadata"]["namespace"], o["metadata"]["name"])
                           for o in self._delete_orphans(rt, orphans))
        for rt, owner in waiting:
            if owner["metadata"].get("uid") not in blocked and self._finish_foreground(rt, owner):
                deleted.append((rt.plural, owner["metadata"]["namespace"], owner["metadata"]["name"]))
        deleted.extend(("namespaces", "", name) for name in self._finish_namespaces())
        return deleted

    def _finish_namespaces(self) -> list[str]:
        """Terminating namespaces are deleted again: what was made in one since goes, and one
        whose last pod went without the registry finishing it (a crash) goes now."""
        finished: list[str] = []
        for ns in self.client.list("namespaces")["items"]:
            name = ns["metadata"]["name"]
            if not ns["metadata"].get("deletionTimestamp"):
                continue
            try:
                self.client.delete("namespaces", name)
                self.client.get("namespaces", name)
            except ApiError as err:
                if err.code != 404:
                    raise
                finished.append(name)
        return finished

    def _finish_foreground(self, rt: ResourceType, owner: dict[str, Any]) -> bool:
        """Drop the foregroundDeletion finalizer of an owner nothing blocks any longer (True:
        done; the registry deletes the owner when no other finalizer is left)."""
        m = owner["metadata"]
        rest = [f for f in m.get("finalizers") or [] if f != FOREGROUND]
        try:
            self.client.patch(rt.plural, m["name"], {"metadata": {"resourceVersion": m["resourceVersion"],
                                                                  "finalizers": rest or None}}, m["namespace"])
        except ApiError as err:
            if err.code not in (404, 409):
                raise
            return False
        log.info("%s %s/%s: foreground deletion finished, no dependent left", rt.kind, m["namespace"], m["name"])
        return True

    def _sweep_one(self, rt: ResourceType, obj: dict[str, Any], owners: dict[OwnerKey, str | None]) -> bool:
        """True when every owner of ``obj`` is gone (it is to be deleted); dangling
        references next to live ones are dropped here."""
        m = obj["metadata"]
        refs = m["ownerReferences"]
        if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
            raise ValueError("metadata.ownerReferences must be a list of owner references")
        live = [r for r in refs if self._owner_exists(r, m.get("namespace", ""), owners)]
        if len(live) == len(refs):
            return False
        if live:
            self._collect(rt, obj, live)
            return False
        return True

    def _delete_orphans(self, rt: ResourceType, orphans: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Delete the orphans of one kind. In the master, in store batches (a Deployment's
        30,000 pods left by a crash mid-cascade go in seconds); each is deleted only as it
        was listed (its resourceVersion is the precondition), so a new object that took an
        orphan's name is never deleted. Through any other client, one by one."""
        registry = getattr(self.client, "registry", None)
        if registry is not None and orphans:
            removed = delete_objects(registry, rt, orphans, None, "Background")
            names = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in removed}
            log.info("%d %s deleted: their owners no longer exist", len(names), rt.plural)
            return [o for o in orphans if (o["metadata"]["namespace"], o["metadata"]["name"]) in names]
        return [o for o in orphans if self._collect(rt, o, [])]

    def _owner_exists(self, ref: dict[str, Any], namespace: str, cache: dict[OwnerKey, str | None]) -> bool:
        rt = by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if rt is None:
            return True  # a kind we do not serve: we cannot tell, so we do not collect
        ns = namespace if rt.namespaced else ""
        key = (rt.api_version, rt.kind, ns, ref.get("name", ""))
        if key not in cache:
            try:
                cache[key] = self.client.get(rt.plural, key[3], ns or None)["metadata"].get("uid")
            except ApiError as err:
                if err.code != 404:
                    raise
                cache[key] = None
        return cache[key] is not None and cache[key] == ref.get("uid")

    def _collect(self, rt: ResourceType, obj: dict[str, Any], live: list[dict[str, Any]]) -> bool:
        """Delete an orphan (True) or drop its dangling references (False)."""
        m = obj["metadata"]
        try:
            if live:
                patch = {"metadata": {"resourceVersion": m["resourceVersion"], "ownerReferences": live}}
                self.client.patch(rt.plural, m["name"], patch, m["namespace"])
                log.info("%s %s/%s: removed references to owners that no longer exist", rt.kind, m["namespace"],
                         m["name"])
                return False
            # The uid precondition: never delete a new object that took the orphan's name.
            self.client.delete(rt.plural, m["name"], m["namespace"], propagation_policy="Background",
                               preconditions_uid=m.get("uid"))
            log.info("%s %s/%s: deleted, its owners no longer exist", rt.kind, m["namespace"], m["name"])
            return True
        except ApiError as err:
            if err.code not in (404, 409):
                raise
            return False
