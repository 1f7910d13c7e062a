"""LocalClient: the ApiClient interface over the master's registry, in-process.

Controllers and schedulers inside the master use it: the same rules as the HTTP API
(validation, optimistic concurrency, graceful deletion) without a socket per call.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterator
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.api.resources import ResourceType, resource
from sigma.client.base import PatchType, WatchEvent
from sigma.store.contract import StoreClosed


class LocalClient:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @staticmethod
    def _rt(name: str) -> ResourceType:
        try:
            return resource(name)
        except KeyError:
            raise ApiError(404, "NotFound", f"the server doesn't have a resource type {name!r}") from None

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.registry.get(self._rt(resource), namespace, name)

    def list(self, resource: str, namespace: str | None = None, *, label_selector: str = "",
             field_selector: str = "") -> dict[str, Any]:
        return self.registry.list(self._rt(resource), namespace, label_selector, field_selector)

    def create(self, resource: str, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        rt = self._rt(resource)
        ns = namespace or (obj.get("metadata") or {}).get("namespace") if rt.namespaced else None
        return self.registry.create(rt, ns, obj)

    def update(self, resource: str, obj: dict[str, Any], namespace: str | None = None,
               subresource: str = "") -> dict[str, Any]:
        rt = self._rt(resource)
        ns = namespace or (obj.get("metadata") or {}).get("namespace") if rt.namespaced else None
        return self.registry.update(rt, ns, obj["metadata"]["name"], obj, subresource)

    def patch(self, resource: str, name: str, patch: Any, namespace: str | None = None,
              patch_type: PatchType = "merge", subresource: str = "") -> dict[str, Any]:
        return self.registry.patch(self._rt(resource), namespace, name, patch_type, patch, subresource)

    def delete(self, resource: str, name: str, namespace: str | None = None, *,
               grace_period_seconds: int | None = None, propagation_policy: str | None = None,
               preconditions_uid: str | None = None) -> dict[str, Any]:
        return self.registry.delete(self._rt(resource), namespace, name, grace_period_seconds, propagation_policy,
                                    preconditions_uid)

    def watch(self, resource: str, namespace: str | None = None, *, resource_version: str = "",
              label_selector: str = "", field_selector: str = "", timeout_seconds: int | None = None,
              allow_bookmarks: bool = True, idle_timeout_seconds: float | None = None) -> Iterator[WatchEvent]:
        # In process there is no connection to die: idle_timeout_seconds has nothing to guard.
        rt = self._rt(resource)
        watch = self.registry.watch(rt, namespace, resource_version, label_selector, field_selector)
        # Blocks in waits of at most a second so a consumer thread can notice its stop flag;
        # an idle second yields a bookmark for the same reason.
        deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        try:
            while True:
                remaining = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
                if remaining <= 0:
                    return
                try:
                    events = watch.wait(remaining)
                except StoreClosed:
                    return
                for ev in events:
                    yield WatchEvent(ev.type, ev.object)
                if not events and allow_bookmarks:
                    yield WatchEvent("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version,
                                                  "metadata": {"resourceVersion": str(watch.revision)}})
        finally:
            watch.close()

    def bind(self, name: str, namespace: str, node_name: str) -> None:
        self.registry.bind(namespace, name, node_name)

    def bind_many(self, bindings: builtins.list[tuple[str, str, str]]) -> builtins.list[ApiError | None]:
        """(name, namespace, node) bindings in one store commit (in-process only: the
        schedulers' batches); each result is None when bound, or the ApiError bind raised."""
        done = self.registry.bind_many([(namespace, name, node) for name, namespace, node in bindings])
        return [result if isinstance(result, ApiError) else None for result in done]

    def evict(self, name: str, namespace: str, grace_period_seconds: int | None = None) -> None:
        self.registry.evict(namespace, name, grace_period_seconds)
