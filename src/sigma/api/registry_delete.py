"""Deletion in the registry: graceful deletion of pods, finalizers, emptying a deleted
namespace, and cascading deletion through ownerReferences."""

from __future__ import annotations

import contextlib
from typing import Any

from sigma.api import errors
from sigma.api.objects import now_rfc3339
from sigma.api.registry_bulk import cascade
from sigma.api.registry_core import MAX_CONFLICT_RETRIES, NAMESPACES, Dependents, RegistryCore
from sigma.api.resources import RESOURCES, ResourceType
from sigma.store.contract import Conflict, KeyNotFound


class Deletion(RegistryCore):
    """RegistryCore plus deletion; see the module docstring."""

    # -- delete -----------------------------------------------------------------------------
    def delete(self, rt: ResourceType, namespace: str | None, name: str, grace_period: int | None = None,
               propagation: str | None = None, precondition_uid: str | None = None,
               precondition_rv: str | None = None) -> dict[str, Any]:
        """Returns the deleted object, or the object marked for graceful deletion."""
        for _ in range(MAX_CONFLICT_RETRIES):
            kv = self.store.get(rt.key(namespace, name))
            if kv is None:
                raise errors.not_found(rt.plural, name, rt.group)
            obj = self._from_kv(kv)
            m = obj["metadata"]
            if precondition_uid and m.get("uid") != precondition_uid:
                raise errors.conflict(rt.plural, name, rt.group, f"Precondition failed: UID in precondition: "
                                      f"{precondition_uid}, UID in object meta: {m.get('uid')}")
            if precondition_rv and precondition_rv != str(kv.mod_revision):
                raise errors.conflict(rt.plural, name, rt.group)
            try:
                result = self._delete_once(rt, namespace, name, obj, kv.mod_revision, grace_period)
            except Conflict:
                continue
            finally:
                self._changed(rt, namespace, name)
            if result is None:
                self._cascade(rt, obj, propagation or "Background")
                return obj
            return result
        raise errors.conflict(rt.plural, name, rt.group, "too many concurrent writers, try again")

    def _delete_once(self, rt: ResourceType, namespace: str | None, name: str, obj: dict[str, Any], rev: int,
                     grace_period: int | None) -> dict[str, Any] | None:
        """None when the object is gone; the updated object when deletion is graceful."""
        m = obj["metadata"]
        grace = self._grace(rt, obj, grace_period)
        if grace > 0 or m.get("finalizers"):
            if grace > 0:
                deadline = self.clock() + grace
                current = m.get("deletionGracePeriodSeconds")
                if current is not None and current <= grace:
                    return obj  # already terminating with a shorter grace period
                m["deletionTimestamp"] = now_rfc3339(deadline)
                m["deletionGracePeriodSeconds"] = grace
            elif not m.get("deletionTimestamp"):
                m["deletionTimestamp"] = now_rfc3339(self.clock())
                m["deletionGracePeriodSeconds"] = 0
            else:
                return obj
            kv = self.store.update(rt.key(namespace, name), self._to_bytes(obj), rev)
            m["resourceVersion"] = str(kv.mod_revision)
            return obj
        if rt is NAMESPACES:
            self._empty_namespace(name)
        try:
            self.store.delete(rt.key(namespace, name), rev)
        except KeyNotFound:
            raise errors.not_found(rt.plural, name, rt.group) from None
        return None

    @staticmethod
    def _grace(rt: ResourceType, obj: dict[str, Any], requested: int | None) -> int:
        """Pods on a node terminate gracefully (the agent stops them, then deletes with 0);
        unbound or finished pods and every other kind go at once."""
        if rt.kind != "Pod":
            return 0
        if not (obj.get("spec") or {}).get("nodeName"):
            return 0
        if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        if requested is not None:
            return max(requested, 0)
        return int((obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30))

    def _empty_namespace(self, namespace: str) -> None:
        for rt in RESOURCES:
            if not rt.namespaced:
                continue
            kvs, _ = self.store.list(rt.key_prefix(namespace))
            for kv in kvs:
                with contextlib.suppress(KeyNotFound):
                    self.store.delete(kv.key)

    def _cascade(self, rt: ResourceType, owner: dict[str, Any], propagation: str) -> None:
        """Background and Foreground delete the dependents (at once, here); Orphan strips the
        owner reference. A dependent left by a crash mid-cascade is collected by the garbage
        collector's sweep (sigma.master.gc). Dependents go in store batches, each level found
        in one scan (sigma.api.registry_bulk): thousands of pods are seconds, not hours."""
        cascade(self, rt, [owner], propagation)

    def dependents(self, uid: str | None, namespace: str | None) -> Dependents:
        out: Dependents = []
        for rt in RESOURCES:
            if rt.kind in ("Event", "Lease", "Namespace"):
                continue
            kvs, _ = self.store.list(rt.key_prefix(namespace if rt.namespaced else None))
            for kv in kvs:
                if uid and uid.encode() in kv.value:  # cheap pre-check before decoding
                    obj = self._from_kv(kv)
                    if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or []):
                        out.append((rt, obj))
        return out
