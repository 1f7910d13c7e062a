"""The registry: Kubernetes object semantics on top of the store contract.

It owns what every write must respect: validation before anything is written (nothing is
partly written), defaults, uid/creationTimestamp/generation, resourceVersion as the store's
mod_revision (optimistic concurrency), spec/status separation, graceful deletion of pods,
finalizers, and cascading deletion through ownerReferences. The HTTP server and the
in-process LocalClient both call it, so in-process controllers get exactly the API's rules.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sigma.api import errors
from sigma.api.errors import ApiError, Cause
from sigma.api.objects import clone, decode, encode, meta, now_rfc3339
from sigma.api.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from sigma.api.resources import RESOURCES, ResourceType, resource
from sigma.api.schema import KIND_SCHEMAS, prune, type_errors
from sigma.api.selectors import (
    DEFAULT_FIELDS,
    FIELD_SELECTORS,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
    required_label_keys,
)
from sigma.api.validation import apply_defaults, validate
from sigma.api.watch import RegistryWatch
from sigma.store.contract import Conflict, KeyExists, KeyNotFound, KeyValue, Store

Clock = Callable[[], float]
# Spelled out here: inside the class, "list" names Registry.list.
Dependents = list[tuple[ResourceType, dict[str, Any]]]
MAX_CONFLICT_RETRIES = 10
# How long a namespace read for admission may be reused. Every create in a namespace reads
# it (does it exist, is it terminating, what pod-security level): a cache saves the store a
# read per create. Writes through this registry drop the entry at once; the age bounds how
# long another master's change to a namespace can go unseen here, as kube-apiserver's
# informer-backed namespace lifecycle admission has it.
NAMESPACE_CACHE_S = 1.0


class Registry:
    def __init__(self, store: Store, clock: Clock = time.time) -> None:
        self.store = store
        self.clock = clock
        self._admission: dict[str, list[Callable[[dict[str, Any], dict[str, Any] | None], None]]] = {}
        self._lock = threading.Lock()
        self._namespaces: dict[str, tuple[float, dict[str, Any]]] = {}  # name -> (read at, object)

    # -- admission hooks (priority resolution, quotas...) ------------------------------
    def add_admission(self, kind: str, hook: Callable[[dict[str, Any], dict[str, Any] | None], None]) -> None:
        """``hook(obj, old)`` may mutate ``obj`` or raise ApiError before a create/update."""
        self._admission.setdefault(kind, []).append(hook)

    # -- codec --------------------------------------------------------------------------
    @staticmethod
    def _from_kv(kv: KeyValue) -> dict[str, Any]:
        obj = decode(kv.value)
        meta(obj)["resourceVersion"] = str(kv.mod_revision)
        return obj

    @staticmethod
    def _to_bytes(obj: dict[str, Any]) -> bytes:
        stored = dict(obj)
        m = dict(stored.get("metadata") or {})
        m.pop("resourceVersion", None)
        stored["metadata"] = m
        return encode(stored)

    # -- read -----------------------------------------------------------------------------
    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        kv = self.store.get(rt.key(namespace, name))
        if kv is None:
            raise errors.not_found(rt.plural, name, rt.group)
        return self._from_kv(kv)

    def list(self, rt: ResourceType, namespace: str | None = None, label_selector: str = "",
             field_selector: str = "", limit: int = 0, continue_token: str = "") -> dict[str, Any]:
        match = self.matcher(rt, label_selector, field_selector)
        may_match = self.prefilter(label_selector)
        kvs, revision = self.store.list(rt.key_prefix(namespace if rt.namespaced else None))
        start_key = ""
        if continue_token:
            try:
                token = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                start_key, revision = token["start"], int(token["rv"])
            except (ValueError, KeyError, TypeError) as err:
                raise errors.bad_request(f"invalid continue token: {err}") from err
        items: list[dict[str, Any]] = []
        next_token = ""
        for kv in kvs:
            if start_key and kv.key <= start_key:
                continue
            if may_match is not None and not may_match(kv.value):
                continue
            obj = self._from_kv(kv)
            if not match(obj):
                continue
            if limit and len(items) >= limit:
                # Paging: the next page resumes after the last key of this one.
                last = rt.key(items[-1]["metadata"].get("namespace"), items[-1]["metadata"]["name"])
                next_token = base64.urlsafe_b64encode(json.dumps({"start": last, "rv": revision}).encode()).decode()
                break
            items.append(obj)
        list_meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if next_token:
            list_meta["continue"] = next_token
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": list_meta, "items": items}

    def matcher(self, rt: ResourceType, label_selector: str, field_selector: str) -> Callable[[dict[str, Any]], bool]:
        try:
            labels = parse_label_selector(label_selector)
            fields = parse_field_selector(field_selector, FIELD_SELECTORS.get(rt.plural, DEFAULT_FIELDS))
        except SelectorError as err:
            raise errors.bad_request(str(err)) from err
        return lambda obj: labels(obj) and fields(obj)

    @staticmethod
    def prefilter(label_selector: str) -> Callable[[bytes], bool] | None:
        """A bytes test that is False only for objects that cannot match the selector: one
        without a required label key anywhere in its JSON. It saves decoding (and matching)
        most objects of a narrow watch or list. None when the selector requires no key."""
        try:
            keys = [f'"{key}"'.encode() for key in required_label_keys(label_selector)]
        except SelectorError as err:
            raise errors.bad_request(str(err)) from err
        if not keys:
            return None
        return lambda raw: all(key in raw for key in keys)

    def watch(self, rt: ResourceType, namespace: str | None, resource_version: str, label_selector: str = "",
              field_selector: str = "") -> RegistryWatch:
        match = self.matcher(rt, label_selector, field_selector)
        prefix = rt.key_prefix(namespace if rt.namespaced else None)
        return RegistryWatch.open(self.store, rt, prefix, resource_version, match, self._from_kv,
                                  selects_all=not label_selector and not field_selector,
                                  may_match=self.prefilter(label_selector))

    # -- create -----------------------------------------------------------------------------
    def prepare(self, rt: ResourceType, body: Any, namespace: str | None, strict: bool = True,
                old: dict[str, Any] | None = None) -> dict[str, Any]:
        """Check the shape, drop or reject unknown fields, default, validate, admit."""
        if not isinstance(body, dict):
            raise errors.bad_request(f"the body must be a {rt.kind} object")
        obj: dict[str, Any] = body
        _check_metadata(rt, obj, "")
        name = (obj.get("metadata") or {}).get("name") or ""
        name = name if isinstance(name, str) else ""  # a mistyped name is reported by type_errors
        if obj.get("kind") not in (None, rt.kind) or obj.get("apiVersion") not in (None, rt.api_version):
            raise errors.bad_request(f"the API version in the data ({obj.get('apiVersion')}) and kind "
                                     f"({obj.get('kind')}) do not match the endpoint ({rt.api_version} {rt.kind})")
        schema = KIND_SCHEMAS[rt.kind]
        problems = type_errors(obj, schema, "")
        if problems:
            raise errors.invalid(rt.kind, name, [Cause(p, m, "FieldValueTypeInvalid") for p, m in problems], rt.group)
        unknown: list[str] = []
        obj = dict(prune(obj, schema, "", unknown))
        if unknown and strict:
            raise errors.invalid(rt.kind, name, [Cause(p, f'Invalid value: unknown field "{p}"', "FieldValueInvalid")
                                                 for p in unknown], rt.group)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        m = meta(obj)
        if rt.namespaced:
            if m.get("namespace") not in (None, "", namespace):
                raise errors.bad_request(f"the namespace of the provided object ({m.get('namespace')}) does "
                                         f"not match the namespace sent on the request ({namespace})")
            m["namespace"] = namespace
        else:
            m.pop("namespace", None)
        apply_defaults(rt.kind, obj)
        causes = validate(rt.kind, obj, old)
        if causes:
            raise errors.invalid(rt.kind, m.get("name") or m.get("generateName") or "", causes, rt.group)
        for hook in self._admission.get(rt.kind, []):
            hook(obj, old)
        return obj

    def create(self, rt: ResourceType, namespace: str | None, body: Any, strict: bool = True,
               dry_run: bool = False) -> dict[str, Any]:
        obj = body
        if isinstance(obj, dict):
            _check_metadata(rt, obj, "")
            obj = clone(obj)
            m = meta(obj)
            if not m.get("name") and m.get("generateName"):
                m["name"] = f"{m['generateName']}{uuid.uuid4().hex[:5]}"
        if rt.namespaced:
            self._require_namespace(namespace)
        obj = self.prepare(rt, obj, namespace, strict)
        m = meta(obj)
        m["uid"] = str(uuid.uuid4())
        m["creationTimestamp"] = now_rfc3339(self.clock())
        m["generation"] = 1
        for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            m.pop(field, None)
        if dry_run:
            return obj
        try:
            kv = self.store.create(rt.key(namespace, m["name"]), self._to_bytes(obj))
        except KeyExists:
            raise errors.already_exists(rt.plural, m["name"], rt.group) from None
        self._namespace_changed(rt, m["name"])
        m["resourceVersion"] = str(kv.mod_revision)
        return obj

    def _require_namespace(self, namespace: str | None) -> None:
        if not namespace:
            raise errors.bad_request("a namespace is required for this resource")
        found = self.namespace(namespace)
        if found is None:
            raise errors.not_found("namespaces", namespace)
        if found["metadata"].get("deletionTimestamp"):
            raise ApiError(403, "Forbidden", f"unable to create new content in namespace {namespace} because "
                           "it is being terminated")

    def namespace(self, name: str) -> dict[str, Any] | None:
        """The namespace `name` for admission decisions, read at most NAMESPACE_CACHE_S ago
        (None if it does not exist: absence is never cached). Read-only for callers."""
        now = time.monotonic()
        cached = self._namespaces.get(name)
        if cached is not None and now - cached[0] < NAMESPACE_CACHE_S:
            return cached[1]
        kv = self.store.get(NAMESPACES.key(None, name))
        if kv is None:
            self._namespaces.pop(name, None)
            return None
        obj = self._from_kv(kv)
        self._namespaces[name] = (now, obj)
        return obj

    def _namespace_changed(self, rt: ResourceType, name: str) -> None:
        if rt is NAMESPACES:
            self._namespaces.pop(name, None)

    # -- update -----------------------------------------------------------------------------
    def update(self, rt: ResourceType, namespace: str | None, name: str, obj: Any, subresource: str = "",
               strict: bool = True) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise errors.bad_request(f"the body must be a {rt.kind} object")
        _check_metadata(rt, obj, name)
        body_name = (obj.get("metadata") or {}).get("name")
        if body_name and body_name != name:
            raise errors.bad_request(f"the name of the object ({body_name}) does not match the name on the URL "
                                     f"({name})")
        expected = (obj.get("metadata") or {}).get("resourceVersion")
        try:
            expected_rev = int(expected) if expected else None
        except (ValueError, TypeError):
            raise errors.invalid(rt.kind, name, [Cause("metadata.resourceVersion", "Invalid value: must be "
                                                       "a decimal number")], rt.group) from None
        kv = self.store.get(rt.key(namespace, name))
        if kv is None:
            raise errors.not_found(rt.plural, name, rt.group)
        if expected_rev is not None and expected_rev != kv.mod_revision:
            raise errors.conflict(rt.plural, name, rt.group)
        old = self._from_kv(kv)
        return self._write(rt, namespace, name, old, kv.mod_revision, clone(obj), subresource, strict)

    def _write(self, rt: ResourceType, namespace: str | None, name: str, old: dict[str, Any], rev: int,
               new: dict[str, Any], subresource: str, strict: bool) -> dict[str, Any]:
        """Merge ``new`` onto ``old`` following spec/status rules, validate, compare-and-swap."""
        new = self._merge_for_subresource(rt, old, new, subresource)
        new = self.prepare(rt, new, namespace, strict, old)
        m, old_m = meta(new), old["metadata"]
        for field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if field in old_m:
                m[field] = old_m[field]
            else:
                m.pop(field, None)
        m["name"] = name
        m["generation"] = old_m.get("generation", 1) + (1 if _spec_changed(rt, old, new) else 0)
        if _same(old, new):
            return old
        try:
            return self._store_write(rt, namespace, name, old_m, rev, new)
        finally:
            self._namespace_changed(rt, name)

    def _store_write(self, rt: ResourceType, namespace: str | None, name: str, old_m: dict[str, Any], rev: int,
                     new: dict[str, Any]) -> dict[str, Any]:
        m = meta(new)
        if old_m.get("deletionTimestamp") and old_m.get("finalizers") and not m.get("finalizers"):
            # The last finalizer is gone from an object being deleted: remove it now.
            try:
                self.store.delete(rt.key(namespace, name), rev)
            except Conflict:
                raise errors.conflict(rt.plural, name, rt.group) from None
            return new
        try:
            kv = self.store.update(rt.key(namespace, name), self._to_bytes(new), rev)
        except Conflict:
            raise errors.conflict(rt.plural, name, rt.group) from None
        except KeyNotFound:
            raise errors.not_found(rt.plural, name, rt.group) from None
        m["resourceVersion"] = str(kv.mod_revision)
        return new

    @staticmethod
    def _merge_for_subresource(rt: ResourceType, old: dict[str, Any], new: dict[str, Any],
                               subresource: str) -> dict[str, Any]:
        if not rt.has_status:
            return new
        if subresource == "status":
            # Status writes change status (and nothing else but labels/annotations).
            merged: dict[str, Any] = clone(old)
            merged["status"] = new.get("status") or {}
            for field in ("labels", "annotations"):
                if field in (new.get("metadata") or {}):
                    merged["metadata"][field] = new["metadata"][field]
            return merged
        # Main-resource writes cannot change status.
        new["status"] = clone(old.get("status") or {})
        return new

    def patch(self, rt: ResourceType, namespace: str | None, name: str, patch_type: str, body: Any,
              subresource: str = "", strict: bool = True) -> dict[str, Any]:
        for _ in range(MAX_CONFLICT_RETRIES):
            kv = self.store.get(rt.key(namespace, name))
            if kv is None:
                raise errors.not_found(rt.plural, name, rt.group)
            old = self._from_kv(kv)
            try:
                if patch_type == "json":
                    patched = json_patch(old, body)
                elif patch_type == "strategic":
                    patched = strategic_merge_patch(old, body, KIND_SCHEMAS[rt.kind])
                else:
                    if not isinstance(body, dict):
                        raise PatchError("a merge patch must be a JSON object")
                    patched = merge_patch(old, body)
            except PatchError as err:
                raise ApiError(422, "Invalid", f"the patch could not be applied: {err}", kind=rt.plural,
                               name=name, group=rt.group) from err
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch replaced the object with a non-object")
            wanted_rv = meta(patched).get("resourceVersion")
            if wanted_rv and wanted_rv != str(kv.mod_revision):
                raise errors.conflict(rt.plural, name, rt.group)
            try:
                return self._write(rt, namespace, name, old, kv.mod_revision, patched, subresource, strict)
            except ApiError as err:
                if err.reason == "Conflict" and not wanted_rv:
                    continue  # someone wrote in between: re-read and re-apply the patch
                raise
        raise errors.conflict(rt.plural, name, rt.group, "too many concurrent writers, try again")

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
                self._namespace_changed(rt, name)
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
        collector's sweep (sigma.master.gc)."""
        uid = owner["metadata"].get("uid")
        namespace = owner["metadata"].get("namespace")
        for dep_rt, dep in self.dependents(uid, namespace if rt.namespaced else None):
            dm = dep["metadata"]
            try:
                if propagation == "Orphan":
                    refs = [r for r in dm.get("ownerReferences") or [] if r.get("uid") != uid]
                    self.patch(dep_rt, dm.get("namespace"), dm["name"], "merge",
                               {"metadata": {"ownerReferences": refs or None}})
                else:
                    self.delete(dep_rt, dm.get("namespace"), dm["name"], propagation=propagation)
            except ApiError as err:
                if err.code != 404:
                    raise

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

    # -- pods/binding and pods/eviction ------------------------------------------------------
    def bind(self, namespace: str, name: str, node_name: str, uid: str | None = None) -> dict[str, Any]:
        for _ in range(MAX_CONFLICT_RETRIES):
            kv, pod = self._bound_pod(self.store.get(PODS.key(namespace, name)), name, node_name, uid)
            try:
                new_kv = self.store.update(kv.key, self._to_bytes(pod), kv.mod_revision)
            except Conflict:
                continue
            pod["metadata"]["resourceVersion"] = str(new_kv.mod_revision)
            return pod
        raise errors.conflict("pods", name, detail="too many concurrent writers, try again")

    def bind_many(self, bindings: builtins.list[tuple[str, str, str]]) -> builtins.list[dict[str, Any] | ApiError]:
        """Several (namespace, name, node) bindings written in one store call (one commit
        on SQLite): a scheduler's batch. Each succeeds or fails on its own, with exactly
        `bind`'s rules; the bound pod or the ApiError is returned in its place."""
        # builtins.list: inside this class, "list" names Registry.list.
        results: builtins.list[dict[str, Any] | ApiError] = []
        writes: builtins.list[tuple[str, bytes, int | None]] = []
        pending: builtins.list[tuple[int, dict[str, Any]]] = []
        stored = self.store.get_many([PODS.key(namespace, name) for namespace, name, _ in bindings])
        for (_, name, node), current in zip(bindings, stored, strict=True):
            try:
                kv, pod = self._bound_pod(current, name, node)
            except ApiError as err:
                results.append(err)
                continue
            writes.append((kv.key, self._to_bytes(pod), kv.mod_revision))
            pending.append((len(results), pod))
            results.append(pod)
        for (index, pod), written in zip(pending, self.store.update_many(writes), strict=True):
            if isinstance(written, KeyValue):
                pod["metadata"]["resourceVersion"] = str(written.mod_revision)
                continue
            namespace, name, node = bindings[index]
            try:  # written in between: decide again with the usual re-reads
                results[index] = self.bind(namespace, name, node)
            except ApiError as err:
                results[index] = err
        return results

    def _bound_pod(self, kv: KeyValue | None, name: str, node_name: str,
                   uid: str | None = None) -> tuple[KeyValue, dict[str, Any]]:
        """The pod as stored `kv`, bound to `node_name`; ApiError if it may not be bound."""
        if kv is None:
            raise errors.not_found("pods", name)
        pod = self._from_kv(kv)
        if uid and pod["metadata"].get("uid") != uid:
            raise errors.conflict("pods", name, detail="the pod was replaced (uid mismatch)")
        if pod["spec"].get("nodeName"):
            raise errors.conflict("pods", name, detail=f"pod {name} is already assigned to node "
                                  f"\"{pod['spec']['nodeName']}\"")
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict("pods", name, detail="the pod is being deleted")
        pod["spec"]["nodeName"] = node_name
        status = pod.setdefault("status", {})
        conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        # No "lastProbeTime": null: null means unset, and a stored null breaks the schema (string).
        conds.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339(self.clock())})
        status["conditions"] = conds
        status.pop("nominatedNodeName", None)
        return kv, pod

    def evict(self, namespace: str, name: str, grace_period: int | None = None) -> dict[str, Any]:
        return self.delete(PODS, namespace, name, grace_period=grace_period)


def _check_metadata(rt: ResourceType, obj: dict[str, Any], name: str) -> None:
    """A body whose metadata is not an object is invalid (422), before anything reads it."""
    m = obj.get("metadata")
    if m is not None and not isinstance(m, dict):
        raise errors.invalid(rt.kind, name, [Cause("metadata", f"Invalid value: expected object, got "
                                                   f"{type(m).__name__}", "FieldValueTypeInvalid")], rt.group)


def _spec_changed(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> bool:
    if "spec" in new or "spec" in old:
        return bool(old.get("spec") != new.get("spec"))
    skip = ("metadata", "status")
    return {k: v for k, v in old.items() if k not in skip} != {k: v for k, v in new.items() if k not in skip}


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """An update that changes nothing writes nothing (and keeps the resourceVersion)."""
    o = {**old, "metadata": {k: v for k, v in old["metadata"].items() if k != "resourceVersion"}}
    n = {**new, "metadata": {k: v for k, v in new["metadata"].items() if k != "resourceVersion"}}
    return o == n


NAMESPACES = resource("namespaces")
PODS = resource("pods")
