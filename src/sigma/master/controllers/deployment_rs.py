"""The Deployment controller over ReplicaSets, as Kubernetes': each pod template a Deployment
has had is a ReplicaSet it owns (``<deployment>-<pod-template-hash>``, numbered by the
annotation ``deployment.kubernetes.io/revision``); a rollout resizes them step by step and
the ReplicaSet controller makes the pods. `kubectl rollout history/undo/pause/resume` work
on these objects as on Kubernetes. Old ReplicaSets scaled to zero are kept up to
spec.revisionHistoryLimit.

Upgrade from Sigma's pre-ReplicaSet controller: pods the Deployment owns directly are
handed, without a restart, to a ReplicaSet for their template (the pod-template-hash label
patched on when missing): they are released with the label in one write and the ReplicaSet,
created after, adopts them by selector, so at no moment does a ReplicaSet own too few pods.

The decisions are sigma.master.controllers.deployment_plan's (and the status rollout's
rollout_status); this module lists, writes and records Events.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.objects import controller_of, is_pod_terminal, owner_reference
from sigma.api.selectors import match_label_selector
from sigma.client.base import ApiClient
from sigma.client.events import record_event
from sigma.master.controllers import deployment_plan as plan
from sigma.master.controllers.keyed import Key, KeyedController
from sigma.master.controllers.rollout import (
    HASH_LABEL,
    REVISION,
    is_active,
    is_available,
    rollout_status,
    template_hash,
)

log = logging.getLogger("sigma.deployment")

RESYNC_S = 30.0
MIGRATED_RECHECK_S = 0.5  # after handing pods to ReplicaSets: look again once they adopted them
COMPONENT = "deployment-controller"
_POD_ONLY = ("nodeName",)  # pod spec fields that are no part of a template


class DeploymentController(KeyedController):
    name = "deployment"
    component = COMPONENT
    primary = "deployments"

    def __init__(self, client: ApiClient, clock: Callable[[], float] = time.time,
                 resync_s: float = RESYNC_S) -> None:
        super().__init__(client, resync_s)
        self.clock = clock
        self.watches = (("deployments", _deployment_key, ""), ("replicasets", _owner_key, ""),
                        ("pods", _owner_key, ""))

    def sync(self, namespace: str, name: str) -> float | None:
        try:
            deploy = self.client.get("deployments", name, namespace)
        except ApiError as err:
            if err.code == 404:
                return None  # deleted: the registry's cascade took its ReplicaSets
            raise
        if deploy["metadata"].get("deletionTimestamp"):
            return None
        now = self.clock()
        pods = self.client.list("pods", namespace)["items"]
        uid = deploy["metadata"]["uid"]
        legacy = [p for p in pods if (controller_of(p) or {}).get("uid") == uid]
        if legacy:
            self._migrate(deploy, legacy, now)
            return MIGRATED_RECHECK_S
        replica_sets = self._replica_sets(deploy)
        new, old = plan.split(deploy, replica_sets)
        by_rs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for pod in pods:
            by_rs[(controller_of(pod) or {}).get("uid", "")].append(pod)
        views = {rs["metadata"]["name"]: self._view(deploy, rs, by_rs[rs["metadata"]["uid"]]) for rs in replica_sets}
        old_views = [views[rs["metadata"]["name"]] for rs in old]
        new_rollout = False
        spec = deploy["spec"]
        if spec.get("paused"):
            steps = plan.paused_step(deploy, views[new["metadata"]["name"]] if new else None, old_views)
        elif new is None:
            old_running = any(not is_pod_terminal(p) for rs in old for p in by_rs[rs["metadata"]["uid"]])
            steps = plan.recreate_step(deploy, None, old_views, old_running) if plan.is_recreate(deploy) else {}
            if not steps and not (plan.is_recreate(deploy) and old_running):
                new = self._create_new(deploy, plan.next_revision(old), plan.first_size(deploy, old_views), now)
                new_rollout = new is not None
        else:
            stale = new
            new, new_rollout = self._sync_new(deploy, new, plan.next_revision(old))
            replica_sets = [new if rs is stale else rs for rs in replica_sets]
            new_view = views[new["metadata"]["name"]]
            if plan.is_recreate(deploy):
                old_running = any(not is_pod_terminal(p) for rs in old for p in by_rs[rs["metadata"]["uid"]])
                steps = plan.recreate_step(deploy, new_view, old_views, old_running)
            else:
                steps = plan.rolling_step(deploy, new_view, old_views)
        if new is not None:
            deploy = self._set_revision(deploy, plan.revision_of(new))
        for rs in replica_sets:
            size = steps.get(rs["metadata"]["name"])
            if size is not None:
                self._scale(deploy, rs, size, now)
        if not steps:
            for victim in plan.history_to_delete(deploy, old_views):
                self._delete_rs(namespace, victim)
        owned_pods = [p for rs in replica_sets for p in by_rs[rs["metadata"]["uid"]] if is_active(p)]
        current = template_hash(spec["template"])
        status, recheck = rollout_status(deploy, owned_pods, current, now, new_rollout)
        if status != deploy.get("status"):
            self.client.update("deployments", {**deploy, "status": status}, namespace, subresource="status")
        return recheck

    # -- reading ---------------------------------------------------------------------------
    def _replica_sets(self, deploy: dict[str, Any]) -> list[dict[str, Any]]:
        """The Deployment's ReplicaSets; orphans its selector matches are adopted."""
        uid = deploy["metadata"]["uid"]
        out = []
        for rs in self.client.list("replicasets", deploy["metadata"]["namespace"])["items"]:
            ref = controller_of(rs)
            if ref is not None:
                if ref.get("uid") == uid:
                    out.append(rs)
                continue
            labels = rs["metadata"].get("labels") or {}
            if not rs["metadata"].get("deletionTimestamp") and match_label_selector(deploy["spec"]["selector"],
                                                                                  labels):
                adopted = self._adopt(deploy, rs)
                if adopted is not None:
                    out.append(adopted)
        return out

    def _view(self, deploy: dict[str, Any], rs: dict[str, Any], pods: list[dict[str, Any]]) -> plan.Owned:
        min_ready_s = int(deploy["spec"].get("minReadySeconds") or 0)
        now = self.clock()
        status = rs.get("status") or {}
        return plan.Owned(
            name=rs["metadata"]["name"], replicas=int(rs["spec"].get("replicas", 1)),
            available=sum(1 for p in pods if is_active(p) and is_available(p, min_ready_s, now)),
            revision=plan.revision_of(rs), created=rs["metadata"].get("creationTimestamp") or "",
            status_replicas=int(status.get("replicas", 0)),
            settled=rs["metadata"].get("generation", 1) <= status.get("observedGeneration", 0))

    # -- writing ---------------------------------------------------------------------------
    def _create_new(self, deploy: dict[str, Any], revision: int, replicas: int, now: float) -> dict[str, Any] | None:
        rs = plan.new_replica_set(deploy, revision, replicas)
        rs["metadata"]["ownerReferences"] = [owner_reference(deploy)]
        try:
            created = self.client.create("replicasets", rs, deploy["metadata"]["namespace"])
        except ApiError as err:
            if err.reason == "AlreadyExists":
                return None  # a ReplicaSet of that name another owner has (or a stale read): next sync
            record_event(self.client, deploy, "Warning", "FailedCreate",
                         f"Failed to create new replica set {rs['metadata']['name']}: {err}", COMPONENT, now)
            raise
        record_event(self.client, deploy, "Normal", "ScalingReplicaSet",
                     f"Scaled up replica set {rs['metadata']['name']} from 0 to {replicas}", COMPONENT, now)
        return created

    def _sync_new(self, deploy: dict[str, Any], new: dict[str, Any], wanted: int) -> tuple[dict[str, Any], bool]:
        """A template that comes back (rollback) takes the next revision; the new ReplicaSet
        follows the Deployment's minReadySeconds and annotations."""
        annotations = plan.revision_update(new, wanted) or {}
        metadata_patch: dict[str, Any] = {}
        if annotations:
            metadata_patch["annotations"] = {**plan.copied_annotations(deploy), **annotations}
        min_ready = deploy["spec"].get("minReadySeconds") or 0
        spec_patch = {"minReadySeconds": min_ready} if (new["spec"].get("minReadySeconds") or 0) != min_ready else {}
        if not metadata_patch and not spec_patch:
            return new, False
        body: dict[str, Any] = {"metadata": {**metadata_patch, "resourceVersion": new["metadata"]["resourceVersion"]}}
        if spec_patch:
            body["spec"] = spec_patch
        updated = self.client.patch("replicasets", new["metadata"]["name"], body, new["metadata"]["namespace"])
        return updated, bool(annotations)

    def _set_revision(self, deploy: dict[str, Any], revision: int) -> dict[str, Any]:
        annotations = deploy["metadata"].get("annotations") or {}
        if annotations.get(REVISION) == str(revision):
            return deploy
        patch = {"metadata": {"resourceVersion": deploy["metadata"]["resourceVersion"],
                              "annotations": {REVISION: str(revision)}}}
        return self.client.patch("deployments", deploy["metadata"]["name"], patch, deploy["metadata"]["namespace"])

    def _scale(self, deploy: dict[str, Any], rs: dict[str, Any], size: int, now: float) -> None:
        was = int(rs["spec"].get("replicas", 1))
        body = {"metadata": {"resourceVersion": rs["metadata"]["resourceVersion"],
                             "annotations": plan.replica_annotations(deploy)}, "spec": {"replicas": size}}
        self.client.patch("replicasets", rs["metadata"]["name"], body, rs["metadata"]["namespace"])
        record_event(self.client, deploy, "Normal", "ScalingReplicaSet",
                     f"Scaled {'up' if size > was else 'down'} replica set {rs['metadata']['name']} from {was} "
                     f"to {size}", COMPONENT, now)

    def _delete_rs(self, namespace: str, name: str) -> None:
        try:
            self.client.delete("replicasets", name, namespace)
        except ApiError as err:
            if err.code != 404:
                raise

    def _adopt(self, deploy: dict[str, Any], rs: dict[str, Any]) -> dict[str, Any] | None:
        m = rs["metadata"]
        refs = [*(m.get("ownerReferences") or []), owner_reference(deploy)]
        try:
            return self.client.patch("replicasets", m["name"], {"metadata": {"resourceVersion": m["resourceVersion"],
                                                                             "ownerReferences": refs}},
                                     m["namespace"])
        except ApiError as err:
            if err.code in (404, 409):
                return None
            raise

    # -- the upgrade from pods owned by the Deployment ------------------------------------
    def _migrate(self, deploy: dict[str, Any], pods: list[dict[str, Any]], now: float) -> None:
        """Hand pods the Deployment owns directly to ReplicaSets, one per template hash,
        keeping every pod (same uid, same container)."""
        current = template_hash(deploy["spec"]["template"])
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for pod in pods:
            groups[(pod["metadata"].get("labels") or {}).get(HASH_LABEL) or current].append(pod)
        try:
            revision = int((deploy["metadata"].get("annotations") or {}).get(REVISION, "1"))
        except ValueError:
            revision = 1
        existing = {rs["metadata"]["name"] for rs in self._replica_sets(deploy)}
        for pod_hash, group in sorted(groups.items(), key=lambda g: g[0] == current):
            for pod in group:
                self._release_to_label(deploy, pod, pod_hash)
            size = sum(1 for p in group if is_active(p))
            if pod_hash == current:
                rs = plan.new_replica_set(deploy, revision, size)
            else:
                rs = _replica_set_of_pod(deploy, group[0], pod_hash, max(revision - 1, 0), size)
            if rs["metadata"]["name"] in existing:
                continue  # made by an earlier, interrupted migration: it adopts the pods
            rs["metadata"]["ownerReferences"] = [owner_reference(deploy)]
            try:
                self.client.create("replicasets", rs, deploy["metadata"]["namespace"])
            except ApiError as err:
                if err.reason != "AlreadyExists":
                    raise
        record_event(self.client, deploy, "Normal", "ReplicaSetsAdopted",
                     f"Handed {len(pods)} pod(s) to ReplicaSets without restarting them", COMPONENT, now)

    def _release_to_label(self, deploy: dict[str, Any], pod: dict[str, Any], pod_hash: str) -> None:
        m = pod["metadata"]
        refs = [r for r in m.get("ownerReferences") or [] if r.get("uid") != deploy["metadata"]["uid"]]
        body = {"metadata": {"resourceVersion": m["resourceVersion"], "ownerReferences": refs or None,
                             "labels": {HASH_LABEL: pod_hash}}}
        try:
            self.client.patch("pods", m["name"], body, m["namespace"])
        except ApiError as err:
            if err.code not in (404, 409):
                raise


def _replica_set_of_pod(deploy: dict[str, Any], pod: dict[str, Any], pod_hash: str, revision: int,
                        size: int) -> dict[str, Any]:
    """An old template known only through its pods (the pre-ReplicaSet controller kept no
    copy): the ReplicaSet's template is one pod's labels and spec."""
    spec = {k: v for k, v in pod["spec"].items() if k not in _POD_ONLY}
    labels = {**(pod["metadata"].get("labels") or {}), HASH_LABEL: pod_hash}
    template: dict[str, Any] = {"metadata": {"labels": labels}, "spec": spec}
    rs = plan.new_replica_set({**deploy, "spec": {**deploy["spec"], "template": template}}, revision, size)
    # Named and labelled by the hash its pods carry, so that it selects exactly them.
    rs["metadata"]["name"] = f"{deploy['metadata']['name']}-{pod_hash}"
    rs["metadata"]["labels"] = labels
    rs["spec"]["selector"]["matchLabels"][HASH_LABEL] = pod_hash
    rs["spec"]["template"]["metadata"]["labels"] = labels
    return rs


def _deployment_key(obj: dict[str, Any]) -> Key | None:
    m = obj.get("metadata") or {}
    return (m["namespace"], m["name"]) if m.get("name") and m.get("namespace") else None


def _owner_key(obj: dict[str, Any]) -> Key | None:
    ref = controller_of(obj)
    if not ref or ref.get("kind") != "Deployment" or not ref.get("apiVersion", "").startswith("apps/"):
        return None
    return (obj["metadata"].get("namespace", ""), ref.get("name", ""))
