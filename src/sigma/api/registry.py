"""The registry: Kubernetes object semantics on top of the store contract.

It owns what every write must respect: validation before anything is written (nothing is
partly written), defaults, uid/creationTimestamp/generation, resourceVersion as the store's
mod_revision (optimistic concurrency), spec/status separation, graceful deletion of pods,
finalizers, and cascading deletion through ownerReferences. The HTTP server and the
in-process LocalClient both call it, so in-process controllers get exactly the API's rules.
"""

from __future__ import annotations

import builtins
from typing import Any

from sigma.api import errors
from sigma.api.errors import ApiError
from sigma.api.objects import now_rfc3339
from sigma.api.registry_core import MAX_CONFLICT_RETRIES, PODS
from sigma.api.registry_delete import Deletion
from sigma.store.contract import Conflict, KeyValue


class Registry(Deletion):
    """The registry every API path and in-process client goes through: RegistryCore, Deletion,
    and the pod subresources binding and eviction."""

    # -- pods/binding and pods/eviction ------------------------------------------------------
    def bind(self, namespace: str, name: str, node_name: str, uid: str | None = None,
             dry_run: bool = False) -> dict[str, Any]:
        for _ in range(MAX_CONFLICT_RETRIES):
            kv, pod = self._bound_pod(self.store.get(PODS.key(namespace, name)), name, node_name, uid)
            if dry_run:
                return pod
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

    def evict(self, namespace: str, name: str, grace_period: int | None = None,
              dry_run: bool = False) -> dict[str, Any]:
        for guard in self._eviction_guards:
            guard(namespace, name, dry_run)
        return self.delete(PODS, namespace, name, grace_period=grace_period, dry_run=dry_run)
