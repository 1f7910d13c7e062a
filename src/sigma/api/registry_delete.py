"""Deletion in the registry: graceful deletion of pods, finalizers, emptying a deleted
namespace, and cascading deletion through ownerReferences.

Foreground deletion follows Kubernetes: the owner is kept, with a deletionTimestamp and the
finalizer ``foregroundDeletion``, while its dependents are deleted; it goes when the last
dependent that blocks it (an ownerReference with ``blockOwnerDeletion: true``) is gone from
the store. A pod dependent ends gracefully, so that is often well after the request: the
registry finishes the owner when it deletes that last dependent, and the garbage collector's
sweep finishes any owner a crash left waiting.

A dry run (``dry_run=True``) decides everything a real deletion decides and answers the
object as it would be, but writes nothing and deletes no dependent."""

from __future__ import annotations

import contextlib
from typing import Any

from sigma.api import errors
from sigma.api.errors import ApiError
from sigma.api.objects import now_rfc3339
from sigma.api.registry_bulk import cascade
from sigma.api.registry_core import MAX_CONFLICT_RETRIES, NAMESPACES, Dependents, RegistryCore
from sigma.api.resources import RESOURCES, ResourceType, by_kind, resource
from sigma.store.contract import Conflict, KeyNotFound

FOREGROUND = "foregroundDeletion"
PODS = resource("pods")


class Deletion(RegistryCore):
    """RegistryCore plus deletion; see the module docstring."""

    # -- delete -----------------------------------------------------------------------------
    def delete(self, rt: ResourceType, namespace: str | None, name: str, grace_period: int | None = None,
               propagation: str | None = None, precondition_uid: str | None = None,
               precondition_rv: str | None = None, dry_run: bool = False) -> dict[str, Any]:
        """Returns the deleted object, or the object marked for graceful or foreground
        deletion (still stored)."""
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
            if propagation == "Foreground" and not m.get("deletionTimestamp") and self._blocking_dependents(rt, obj):
                try:
                    return self._delete_foreground(rt, namespace, name, obj, kv.mod_revision, dry_run)
                except Conflict:
                    continue
            if dry_run:
                return self._delete_once(rt, namespace, name, obj, kv.mod_revision, grace_period, True) or obj
            try:
                result = self._delete_once(rt, namespace, name, obj, kv.mod_revision, grace_period)
            except Conflict:
                continue
            finally:
                self._changed(rt, namespace, name)
            if result is None:
                self._cascade(rt, obj, propagation or "Background")
                self._release_owners(obj)
                self.finish_namespaces(rt, [obj])
                return obj
            return result
        raise errors.conflict(rt.plural, name, rt.group, "too many concurrent writers, try again")

    def _delete_foreground(self, rt: ResourceType, namespace: str | None, name: str, obj: dict[str, Any],
                           rev: int, dry_run: bool) -> dict[str, Any]:
        """Mark the owner (deletionTimestamp, finalizer foregroundDeletion), delete its
        dependents, then let it go at once if none of them is left blocking it."""
        m = obj["metadata"]
        m["deletionTimestamp"] = now_rfc3339(self.clock())
        m["deletionGracePeriodSeconds"] = 0
        m["finalizers"] = [*(f for f in m.get("finalizers") or [] if f != FOREGROUND), FOREGROUND]
        if dry_run:
            return obj
        kv = self.store.update(rt.key(namespace, name), self._to_bytes(obj), rev)
        self._changed(rt, namespace, name)
        m["resourceVersion"] = str(kv.mod_revision)
        self._cascade(rt, obj, "Foreground")
        self.finish_foreground(rt, namespace, name)
        return obj

    def _blocking_dependents(self, rt: ResourceType, owner: dict[str, Any]) -> Dependents:
        """The dependents whose reference to `owner` has blockOwnerDeletion: true (the ones a
        foreground deletion waits for)."""
        uid = owner["metadata"].get("uid")
        namespace = owner["metadata"].get("namespace") if rt.namespaced else None
        return [(dep_rt, dep) for dep_rt, dep in self.dependents(uid, namespace)
                if any(r.get("uid") == uid and r.get("blockOwnerDeletion") is True
                       for r in dep["metadata"].get("ownerReferences") or [])]

    def finish_foreground(self, rt: ResourceType, namespace: str | None, name: str) -> bool:
        """Drop the foregroundDeletion finalizer of an owner none of whose dependents blocks
        it any longer (which deletes it when no other finalizer is left). True when done."""
        for _ in range(MAX_CONFLICT_RETRIES):
            kv = self.store.get(rt.key(namespace, name))
            if kv is None:
                return False
            owner = self._from_kv(kv)
            m = owner["metadata"]
            if not m.get("deletionTimestamp") or FOREGROUND not in (m.get("finalizers") or []):
                return False
            if self._blocking_dependents(rt, owner):
                return False
            rest = [f for f in m["finalizers"] if f != FOREGROUND]
            try:
                self.patch(rt, namespace, name, "merge", {"metadata": {"resourceVersion": m["resourceVersion"],
                                                                       "finalizers": rest or None}})
            except ApiError as err:
                if err.reason == "Conflict":
                    continue
                if err.code == 404:
                    return False
                raise
            return True
        return False

    def _deleted(self, obj: dict[str, Any]) -> None:
        self._release_owners(obj)

    def _release_owners(self, gone: dict[str, Any]) -> None:
        """`gone` has just been deleted from the store: an owner waiting in foreground
        deletion for it may go now."""
        namespace = gone["metadata"].get("namespace")
        for ref in gone["metadata"].get("ownerReferences") or []:
            if ref.get("blockOwnerDeletion") is not True:
                continue
            owner_rt = by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
            if owner_rt is None:
                continue
            owner_ns = namespace if owner_rt.namespaced else None
            kv = self.store.get(owner_rt.key(owner_ns, ref.get("name", "")))
            if kv is None or FOREGROUND.encode() not in kv.value:  # the cheap test first
                continue
            if self._from_kv(kv)["metadata"].get("uid") == ref.get("uid"):
                self.finish_foreground(owner_rt, owner_ns, ref.get("name", ""))

    def finish_namespaces(self, rt: ResourceType, gone: list[dict[str, Any]]) -> None:
        """Pods just removed from the store: a Terminating namespace whose last pod this was
        goes now (the garbage collector's sweep finishes any that a crash left waiting)."""
        if rt is not PODS:
            return
        for namespace in sorted({o["metadata"].get("namespace") or "" for o in gone}):
            kv = self.store.get(NAMESPACES.key(None, namespace))
            if kv is None or b"deletionTimestamp" not in kv.value:  # the cheap test first
                continue
            if self._from_kv(kv)["metadata"].get("deletionTimestamp") and not self._pods_left(namespace):
                with contextlib.suppress(ApiError):  # another request finished it first
                    self.delete(NAMESPACES, None, namespace)

    def _pods_left(self, namespace: str) -> bool:
        kvs, _ = self.store.list(PODS.key_prefix(namespace))
        return bool(kvs)

    def _delete_once(self, rt: ResourceType, namespace: str | None, name: str, obj: dict[str, Any], rev: int,
                     grace_period: int | None, dry_run: bool = False) -> dict[str, Any] | None:
        """None when the object is gone; the updated object when deletion is graceful. A
        dry run writes nothing and answers as the real deletion would."""
        if rt is NAMESPACES and not dry_run:
            return self._delete_namespace(name, obj, rev)
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
            if dry_run:
                return obj
            kv = self.store.update(rt.key(namespace, name), self._to_bytes(obj), rev)
            m["resourceVersion"] = str(kv.mod_revision)
            return obj
        if dry_run:
            return None
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

    def _delete_namespace(self, name: str, obj: dict[str, Any], rev: int) -> dict[str, Any] | None:
        """Kubernetes' namespace lifecycle: the namespace is marked Terminating first, so that
        nothing new is made in it (a ReplicaSet replacing the pods being deleted would be),
        then its content goes, pods on a node gracefully (their agents stop them first).
        While any pod is left it stays; None once it is gone."""
        m = obj["metadata"]
        if not m.get("deletionTimestamp"):
            m["deletionTimestamp"] = now_rfc3339(self.clock())
            m["deletionGracePeriodSeconds"] = 0
            obj.setdefault("status", {})["phase"] = "Terminating"
            rev = self.store.update(NAMESPACES.key(None, name), self._to_bytes(obj), rev).mod_revision
            m["resourceVersion"] = str(rev)
            self._changed(NAMESPACES, None, name)  # admission reads it anew: no create gets past
        if self._empty_namespace(name):
            return obj
        try:
            self.store.delete(NAMESPACES.key(None, name), rev)
        except KeyNotFound:
            raise errors.not_found(NAMESPACES.plural, name) from None
        return None

    def _empty_namespace(self, namespace: str) -> bool:
        """Delete what `namespace` holds; True while pods of it are still terminating."""
        terminating = False
        for rt in RESOURCES:
            if not rt.namespaced:
                continue
            kvs, _ = self.store.list(rt.key_prefix(namespace))
            for kv in kvs:
                if rt is PODS:
                    pod = self._from_kv(kv)
                    if pod["metadata"].get("deletionTimestamp") or self._grace(rt, pod, None) > 0:
                        terminating = True
                        if not pod["metadata"].get("deletionTimestamp"):
                            with contextlib.suppress(Conflict, KeyNotFound):  # changed: the next pass sees it
                                self._delete_once(rt, namespace, pod["metadata"]["name"], pod, kv.mod_revision,
                                                  None)
                        continue
                with contextlib.suppress(KeyNotFound):
                    self.store.delete(kv.key)
        return terminating

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
