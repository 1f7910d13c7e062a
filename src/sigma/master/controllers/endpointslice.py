"""The EndpointSlice controller: keeps each Service's EndpointSlices listing the pods it selects.

The decisions are pure (sigma.master.controllers.endpointslice_plan); this is the shell that
reads a Service, its pods and its slices, and writes the plan. A Service is looked at again
when it changes, when one of its slices is changed by someone else, and when a pod that it
selects (or selected at its last sync) comes, goes or changes: its IP, its readiness, its
labels, its deletion. Slices are owned by their Service (ownerReferences), so deleting the
Service deletes them with it.

A Service whose slices cannot be written does not hold up the others: the keyed loop records
a Warning Event on it and tries it again later.

A named targetPort that selected pods do not declare leaves those pods out of that port, as in
Kubernetes, and a Warning Event on the Service says which port and which pods. The controller
remembers what it told each Service, so the Event is written once per problem (and again when
the pods concerned change), not on every sync: each sync would otherwise bump its count.
"""

from __future__ import annotations

import threading
from typing import Any

from sigma.api.errors import ApiError
from sigma.client.base import ApiClient
from sigma.client.events import record_event
from sigma.master.controllers.endpointslice_plan import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MAX_ENDPOINTS_PER_SLICE,
    SERVICE_NAME_LABEL,
    TARGET_PORT_NOT_FOUND,
    SlicePlan,
    UnresolvedPort,
    desired_endpoints,
    plan_slices,
    port_warnings_due,
    selects,
    unresolved_target_ports,
)
from sigma.master.controllers.keyed import Key, KeyedController

RESYNC_S = 30.0
MAX_PER_SLICE = MAX_ENDPOINTS_PER_SLICE
COMPONENT = "endpointslice-controller"
MANAGED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"


class EndpointSliceController(KeyedController):
    name = "endpointslice"
    component = COMPONENT
    failure_reason = "FailedToUpdateEndpointSlices"
    primary = "services"

    def __init__(self, client: ApiClient, resync_s: float = RESYNC_S,
                 max_per_slice: int = MAX_PER_SLICE) -> None:
        super().__init__(client, resync_s)
        self.max_per_slice = max_per_slice
        self._lock = threading.Lock()
        self._selectors: dict[Key, dict[str, str]] = {}  # the selector of every Service seen
        self._members: dict[Key, set[str]] = {}  # the pods in each Service's slices, by name
        # The port problems said in Events, by Service and its uid (a Service made again under
        # the same name is told again).
        self._told: dict[Key, tuple[str, frozenset[UnresolvedPort]]] = {}
        self.watches = (("services", _service_key, ""), ("pods", self._pod_keys, ""),
                        ("endpointslices", _slice_key, MANAGED_SELECTOR))

    def _pod_keys(self, pod: dict[str, Any]) -> Key | None:
        """Queue every Service that selects the pod now or listed it at its last sync."""
        m = pod.get("metadata") or {}
        namespace, name = m.get("namespace") or "", m.get("name") or ""
        with self._lock:
            keys = [key for key, selector in self._selectors.items()
                    if key[0] == namespace and (selects(selector, pod) or name in self._members.get(key, ()))]
        for key in keys:
            self.queue.add(key)
        return None

    def _forget(self, key: Key) -> None:
        with self._lock:
            self._selectors.pop(key, None)
            self._members.pop(key, None)
            self._told.pop(key, None)

    def sync(self, namespace: str, name: str) -> float | None:
        key = (namespace, name)
        try:
            service = self.client.get("services", name, namespace)
        except ApiError as err:
            if err.code == 404:
                self._forget(key)  # its slices went with it (owner references)
                return None
            raise
        spec = service.get("spec") or {}
        selector = spec.get("selector") or {}
        if service["metadata"].get("deletionTimestamp"):
            return None
        if not selector:
            # Without a selector the Service's slices are someone else's to write.
            self._forget(key)
            return None
        existing = self._slices(namespace, name)
        if spec.get("type") == "ExternalName":
            self._forget(key)
            self._apply(namespace, SlicePlan(delete=existing))
            return None
        with self._lock:
            self._selectors[key] = dict(selector)
        label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        pods = self.client.list("pods", namespace, label_selector=label_selector)["items"]
        groups = desired_endpoints(service, pods)
        with self._lock:
            self._members[key] = {e["targetRef"]["name"] for group in groups.values() for e in group}
        uid = service["metadata"].get("uid")
        mine = [s for s in existing if _owner_uid(s) in (uid, None)]
        plan = plan_slices(service, groups, mine, self.max_per_slice)
        plan.delete.extend(s for s in existing if _owner_uid(s) not in (uid, None))
        self._apply(namespace, plan)
        self._warn_unresolved(key, service, pods)
        return None

    def _warn_unresolved(self, key: Key, service: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        problems = unresolved_target_ports(service, pods)
        uid = str(service["metadata"].get("uid") or "")
        with self._lock:
            told_uid, told = self._told.get(key, (uid, frozenset()))
            due = port_warnings_due(told if told_uid == uid else frozenset(), problems)
            self._told[key] = (uid, frozenset(problems))
        for problem in due:
            record_event(self.client, service, "Warning", TARGET_PORT_NOT_FOUND, problem.message(), self.component)

    def _slices(self, namespace: str, service: str) -> list[dict[str, Any]]:
        selector = f"{SERVICE_NAME_LABEL}={service},{MANAGED_SELECTOR}"
        return list(self.client.list("endpointslices", namespace, label_selector=selector)["items"])

    def _apply(self, namespace: str, plan: SlicePlan) -> None:
        for eps in plan.update:
            self.client.update("endpointslices", eps, namespace)
        for eps in plan.create:
            self.client.create("endpointslices", eps, namespace)
        for eps in plan.delete:
            try:
                self.client.delete("endpointslices", eps["metadata"]["name"], namespace,
                                   preconditions_uid=eps["metadata"].get("uid"))
            except ApiError as err:
                if err.code not in (404, 409):
                    raise


def _owner_uid(eps: dict[str, Any]) -> str | None:
    for ref in (eps.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Service" and ref.get("controller"):
            return str(ref.get("uid") or "")
    return None


def _service_key(obj: dict[str, Any]) -> Key | None:
    m = obj.get("metadata") or {}
    return (m["namespace"], m["name"]) if m.get("name") and m.get("namespace") else None


def _slice_key(obj: dict[str, Any]) -> Key | None:
    m = obj.get("metadata") or {}
    service = (m.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return (m.get("namespace") or "", service) if service else None
