"""The registry's core: reading, creating, updating and patching objects on the store.

Validation before anything is written (nothing is partly written), defaults, uid,
creationTimestamp and generation, resourceVersion as the store's mod_revision (optimistic
concurrency), spec/status separation, admission hooks. Deletion (sigma.api.registry_delete)
and the pod subresources (sigma.api.registry) build on it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import orjson

from sigma.api import errors
from sigma.api.errors import ApiError, Cause
from sigma.api.objects import clone, decode, encode, meta, now_rfc3339
from sigma.api.patch import PatchError, PatchTestFailed, json_patch, merge_patch, strategic_merge_patch
from sigma.api.resources import ResourceType, resource
from sigma.api.schema import KIND_SCHEMAS, prune, type_errors
from sigma.api.selectors import (
    DEFAULT_FIELDS,
    FIELD_SELECTORS,
    SelectorError,
    node_name_value,
    parse_field_selector,
    parse_label_selector,
    required_field_values,
    required_label_keys,
)
from sigma.api.uids import new_uid, new_uid_hex
from sigma.api.validation import apply_defaults, validate
from sigma.api.watch import RegistryWatch
from sigma.store.contract import Conflict, KeyExists, KeyNotFound, KeyValue, Store

Clock = Callable[[], float]
# How a pod's spec.nodeName starts in its stored (compact) JSON: a watch's route (see
# sigma.store.routing).
NODE_NAME_MARKER = b'"nodeName":"'
# Spelled out here: inside the class, "list" names Registry.list.
Dependents = list[tuple[ResourceType, dict[str, Any]]]
MAX_CONFLICT_RETRIES = 10
# How long a namespace read for admission may be reused. Every create in a namespace reads
# it (does it exist, is it terminating, what pod-security level): a cache saves the store a
# read per create. Writes through this registry drop the entry at once; the age bounds how
# long another master's change to a namespace can go unseen here, as kube-apiserver's
# informer-backed namespace lifecycle admission has it.
NAMESPACE_CACHE_S = 1.0
# Set while a dry-run request (dryRun=All) goes through the registry: admission hooks that
# would write something of their own (the quota's status.used charge) check it and only
# decide. A context variable: concurrent requests on other threads or tasks are unaffected.
_DRY_RUN: ContextVar[bool] = ContextVar("sigma_dry_run", default=False)


def in_dry_run() -> bool:
    """True inside a dry-run request: admission must decide, and write nothing."""
    return _DRY_RUN.get()


@contextlib.contextmanager
def dry_run_scope(dry_run: bool) -> Iterator[None]:
    token = _DRY_RUN.set(dry_run or _DRY_RUN.get())
    try:
        yield
    finally:
        _DRY_RUN.reset(token)


class RegistryCore:
    """Reads, creates, updates and patches; see the module docstring."""

    def __init__(self, store: Store, clock: Clock = time.time) -> None:
        self.store = store
        self.clock = clock
        self._admission: dict[str, list[Callable[[dict[str, Any], dict[str, Any] | None], None]]] = {}
        self._on_create: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self._eviction_guards: list[Callable[[str, str, bool], None]] = []
        self._lock = threading.Lock()
        self._namespaces: dict[str, tuple[float, dict[str, Any]]] = {}  # name -> (read at, object)
        self._empty: dict[tuple[str, str], float] = {}  # (plural, namespace) -> listed empty at

    # -- admission hooks (priority resolution, quotas...) ------------------------------
    def add_admission(self, kind: str, hook: Callable[[dict[str, Any], dict[str, Any] | None], None]) -> None:
        """``hook(obj, old)`` may mutate ``obj`` or raise ApiError before a create/update."""
        self._admission.setdefault(kind, []).append(hook)

    def add_eviction_guard(self, guard: Callable[[str, str, bool], None]) -> None:
        """``guard(namespace, name, dry_run)`` may refuse a pod eviction (disruption budgets)."""
        self._eviction_guards.append(guard)

    def add_on_create(self, kind: str, hook: Callable[[dict[str, Any]], None]) -> None:
        """``hook(obj)`` completes a new object once it has its uid (a Job's generated selector)."""
        self._on_create.setdefault(kind, []).append(hook)

    # -- codec --------------------------------------------------------------------------
    @staticmethod
    def _from_kv(kv: KeyValue) -> dict[str, Any]:
        obj = decode(kv.value)
        meta(obj)["resourceVersion"] = str(kv.mod_revision)
        return obj

    @staticmethod
    def _to_bytes(obj: dict[str, Any]) -> bytes:
        # apiVersion, kind, then metadata without its resourceVersion (the store's revision
        # is the resourceVersion): a watch splices it back into these bytes without decoding
        # them (watch.with_resource_version).
        m = dict(obj.get("metadata") or {})
        m.pop("resourceVersion", None)
        stored: dict[str, Any] = {k: obj[k] for k in ("apiVersion", "kind") if k in obj}
        stored["metadata"] = m
        for k, v in obj.items():
            if k not in stored:
                stored[k] = v
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
        may_match = self.prefilter(label_selector, field_selector)
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
    def prefilter(label_selector: str, field_selector: str = "") -> Callable[[bytes], bool] | None:
        """A bytes test that is False only for objects that cannot match the selectors: one
        without a required label key, or a required field value, anywhere in its JSON. It
        saves decoding (and matching) most objects of a narrow watch or list. None when the
        selectors require nothing."""
        try:
            needles = [f'"{key}"'.encode() for key in required_label_keys(label_selector)]
            # Stored objects are compact JSON: a string value follows its key's colon directly.
            needles += [b":" + orjson.dumps(value) for value in required_field_values(field_selector)]
        except SelectorError as err:
            raise errors.bad_request(str(err)) from err
        if not needles:
            return None
        return lambda raw: all(needle in raw for needle in needles)

    def watch(self, rt: ResourceType, namespace: str | None, resource_version: str, label_selector: str = "",
              field_selector: str = "") -> RegistryWatch:
        match = self.matcher(rt, label_selector, field_selector)
        prefix = rt.key_prefix(namespace if rt.namespaced else None)
        # An agent's watch of its node's pods: the store hands it only the events of pods
        # on that node, instead of every watch testing every pod event (store/routing.py).
        node = node_name_value(field_selector) if rt.plural == "pods" else None
        route = (NODE_NAME_MARKER, node.encode()) if node else None
        return RegistryWatch.open(self.store, rt, prefix, resource_version, match, self._from_kv,
                                  selects_all=not label_selector and not field_selector,
                                  may_match=self.prefilter(label_selector, field_selector), route=route)

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
        if causes and old is not None and old.get("spec") == obj.get("spec"):
            # Ratcheting, as Kubernetes does for status writes: a spec stored before a rule
            # existed, and not changed by this write, does not block status or metadata
            # (the scheduler must still be able to say why such a pod cannot run).
            causes = [c for c in causes if not (c.field == "spec" or c.field.startswith(("spec.", "spec[")))]
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
                m["name"] = f"{m['generateName']}{new_uid_hex()[:5]}"
        if rt.namespaced:
            self._require_namespace(namespace)
        with dry_run_scope(dry_run):
            obj = self.prepare(rt, obj, namespace, strict)
        m = meta(obj)
        m["uid"] = new_uid()
        m["creationTimestamp"] = now_rfc3339(self.clock())
        m["generation"] = 1
        for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            m.pop(field, None)
        for hook in self._on_create.get(rt.kind, []):
            hook(obj)
        if dry_run:
            # Everything a real create checks, except that the name is free: the store's
            # create is what finds that out, so ask it without writing.
            if self.store.get(rt.key(namespace, m["name"])) is not None:
                raise errors.already_exists(rt.plural, m["name"], rt.group)
            return obj
        try:
            kv = self.store.create(rt.key(namespace, m["name"]), self._to_bytes(obj))
        except KeyExists:
            raise errors.already_exists(rt.plural, m["name"], rt.group) from None
        self._changed(rt, namespace, m["name"])
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

    def recently_empty(self, rt: ResourceType, namespace: str) -> bool:
        """True when a listing of `rt` in `namespace` found nothing less than
        NAMESPACE_CACHE_S ago (`note_empty`) and this registry has written none there since:
        admission asking "is there any ResourceQuota here?" on every create need not ask
        the store each time."""
        since = self._empty.get((rt.plural, namespace))
        return since is not None and time.monotonic() - since < NAMESPACE_CACHE_S

    def note_empty(self, rt: ResourceType, namespace: str) -> None:
        self._empty[(rt.plural, namespace)] = time.monotonic()

    def _changed(self, rt: ResourceType, namespace: str | None, name: str) -> None:
        """Forget what the admission caches hold about an object this registry writes."""
        if rt is NAMESPACES:
            self._namespaces.pop(name, None)
        self._empty.pop((rt.plural, namespace or ""), None)

    # -- update -----------------------------------------------------------------------------
    def update(self, rt: ResourceType, namespace: str | None, name: str, obj: Any, subresource: str = "",
               strict: bool = True, dry_run: bool = False) -> dict[str, Any]:
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
        return self._write(rt, namespace, name, old, kv.mod_revision, clone(obj), subresource, strict, dry_run)

    def _write(self, rt: ResourceType, namespace: str | None, name: str, old: dict[str, Any], rev: int,
               new: dict[str, Any], subresource: str, strict: bool, dry_run: bool = False) -> dict[str, Any]:
        """Merge ``new`` onto ``old`` following spec/status rules, validate, compare-and-swap.
        A dry run stops before the store and answers the object as it would have been
        written (with the current resourceVersion)."""
        new = self._merge_for_subresource(rt, old, new, subresource)
        with dry_run_scope(dry_run):
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
        if dry_run:
            meta(new)["resourceVersion"] = str(rev)
            return new
        try:
            return self._store_write(rt, namespace, name, old_m, rev, new)
        finally:
            self._changed(rt, namespace, name)

    def _store_write(self, rt: ResourceType, namespace: str | None, name: str, old_m: dict[str, Any], rev: int,
                     new: dict[str, Any]) -> dict[str, Any]:
        m = meta(new)
        if old_m.get("deletionTimestamp") and old_m.get("finalizers") and not m.get("finalizers"):
            # The last finalizer is gone from an object being deleted: remove it now.
            try:
                self.store.delete(rt.key(namespace, name), rev)
            except Conflict:
                raise errors.conflict(rt.plural, name, rt.group) from None
            self._deleted(new)
            return new
        try:
            kv = self.store.update(rt.key(namespace, name), self._to_bytes(new), rev)
        except Conflict:
            raise errors.conflict(rt.plural, name, rt.group) from None
        except KeyNotFound:
            raise errors.not_found(rt.plural, name, rt.group) from None
        m["resourceVersion"] = str(kv.mod_revision)
        return new

    def _deleted(self, obj: dict[str, Any]) -> None:
        """Called once `obj` is gone from the store (see Deletion: owners waiting for it)."""

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
              subresource: str = "", strict: bool = True, dry_run: bool = False) -> dict[str, Any]:
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
                raise patch_failed(rt.plural, name, rt.group, err) from err
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch replaced the object with a non-object")
            wanted_rv = meta(patched).get("resourceVersion")
            if wanted_rv and wanted_rv != str(kv.mod_revision):
                raise errors.conflict(rt.plural, name, rt.group)
            try:
                return self._write(rt, namespace, name, old, kv.mod_revision, patched, subresource, strict,
                                   dry_run)
            except ApiError as err:
                if err.reason == "Conflict":
                    # Someone wrote in between: re-read and re-apply the patch. A patch that
                    # names a resourceVersion fails the check above on the next pass.
                    continue
                raise
        raise errors.conflict(rt.plural, name, rt.group, "too many concurrent writers, try again")


def patch_failed(resource: str, name: str, group: str, err: PatchError) -> ApiError:
    """422 Invalid for a patch that cannot be applied, as kube-apiserver answers; a failed
    JSON-patch test names its path and the expected value (also as a cause)."""
    causes = [Cause(err.path, str(err), "FieldValueInvalid")] if isinstance(err, PatchTestFailed) else []
    return ApiError(422, "Invalid", f"the patch could not be applied: {err}", kind=resource, name=name,
                    group=group, causes=causes)


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
