"""The client interface every Sigma component programs against.

Two implementations share it: ``HttpClient`` (sigma.client.http) speaks the Kubernetes REST
API over HTTP and is what the agent, the CLI and the benchmarks use; ``LocalClient``
(sigma.client.local) calls the master's registry in-process and is what the controllers and
schedulers inside the master use (the loopback client of Kubernetes, without the socket).

Resources are named by their plural ("pods", "deployments", "batchjobs"); objects are plain
dicts in their Kubernetes JSON shape. Every failure raises ``sigma.api.errors.ApiError``
carrying the server's Status (code, reason, message, causes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

PatchType = Literal["merge", "json", "strategic"]

PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK | ERROR
    object: dict[str, Any]


class ApiClient(Protocol):
    def get(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any]: ...

    def list(self, resource: str, namespace: str | None = None, *, label_selector: str = "",
             field_selector: str = "") -> dict[str, Any]:
        """A List object: {"items": [...], "metadata": {"resourceVersion": ...}}. Without a
        namespace, a namespaced resource is listed across all namespaces."""
        ...

    def create(self, resource: str, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]: ...

    def update(self, resource: str, obj: dict[str, Any], namespace: str | None = None,
               subresource: str = "") -> dict[str, Any]:
        """PUT; with metadata.resourceVersion set, fails with 409 Conflict if it is stale."""
        ...

    def patch(self, resource: str, name: str, patch: Any, namespace: str | None = None,
              patch_type: PatchType = "merge", subresource: str = "") -> dict[str, Any]: ...

    def delete(self, resource: str, name: str, namespace: str | None = None, *,
               grace_period_seconds: int | None = None, propagation_policy: str | None = None,
               preconditions_uid: str | None = None) -> dict[str, Any]: ...

    def watch(self, resource: str, namespace: str | None = None, *, resource_version: str = "",
              label_selector: str = "", field_selector: str = "", timeout_seconds: int | None = None,
              allow_bookmarks: bool = True, idle_timeout_seconds: float | None = None) -> Iterator[WatchEvent]:
        """Events after ``resource_version``. Raises ApiError(410) when it was compacted:
        the caller relists. Ends when the server closes the stream or the timeout passes.
        ``idle_timeout_seconds``: a stream silent that long (no event, no bookmark) is taken
        for a dead connection and raises ConnectionError; the caller resumes from the last
        resourceVersion it saw."""
        ...

    def bind(self, name: str, namespace: str, node_name: str) -> None:
        """POST pods/NAME/binding."""
        ...

    def evict(self, name: str, namespace: str, grace_period_seconds: int | None = None) -> None:
        """POST pods/NAME/eviction."""
        ...
