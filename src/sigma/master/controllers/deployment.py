"""The deployment controller: keeps each Deployment's pods at spec.replicas and rolls them
to a new pod template, the way Kubernetes does, but without ReplicaSets.

Pods are owned by the Deployment itself (ownerReferences, controller=true) and carry the
label ``pod-template-hash``: pods with the current template's hash play the part of the
"new ReplicaSet", every other hash the old ones. The planning (``plan_pods``) and the status
(``rollout_status`` in sigma.master.controllers.rollout) are pure; this module is the shell
that lists, creates, deletes and writes. Everything it needs is in the store: the revision
and the hash it belongs to are annotations on the Deployment, so a restarted master carries
on where the last one stopped, without duplicating pods.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.objects import controller_of, is_pod_terminal, owner_reference
from sigma.client.base import ApiClient
from sigma.client.events import record_event
from sigma.master.controllers.burst import slow_start
from sigma.master.controllers.keyed import Key, KeyedController
from sigma.master.controllers.rollout import (
    HASH_LABEL,
    REVISION,
    SAFE_ALPHABET,
    TEMPLATE_HASH,
    plan_pods,
    rollout_status,
    template_hash,
)

log = logging.getLogger("sigma.deployment")

RESYNC_S = 30.0
BURST_FAILED_RETRY_S = 5.0  # a burst stopped by a failed create: try again after this
COMPONENT = "deployment-controller"


class DeploymentController(KeyedController):
    name = "deployment"
    component = COMPONENT
    primary = "deployments"

    def __init__(self, client: ApiClient, clock: Callable[[], float] = time.time,
                 resync_s: float = RESYNC_S) -> None:
        super().__init__(client, resync_s)
        self.clock = clock
        self.watches = (("deployments", _deployment_key, ""), ("pods", _owner_key, HASH_LABEL))

    # -- one deployment ------------------------------------------------------------------
    def sync(self, namespace: str, name: str) -> float | None:
        """Reconcile one Deployment; returns when to look at it again (None: on events only)."""
        try:
            deploy = self.client.get("deployments", name, namespace)
        except ApiError as err:
            if err.code == 404:
                return None  # deleted: the registry's cascade took its pods
            raise
        if deploy["metadata"].get("deletionTimestamp"):
            return None
        now = self.clock()
        pods = self._pods_of(deploy)
        for pod in pods:
            if is_pod_terminal(pod) and not pod["metadata"].get("deletionTimestamp"):
                self._replace_finished(deploy, pod, now)
        pods = [p for p in pods if not is_pod_terminal(p)]
        current = template_hash(deploy["spec"]["template"])
        deploy, new_rollout = self._ensure_revision(deploy, current)
        plan = plan_pods(deploy, pods, current, now)
        created, failed = slow_start(plan.create, lambda: self._create_pod(deploy, current, now))
        if created:
            have = sum(1 for p in pods if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == current)
            self._scaled(deploy, current, "up", have + created, now)
        for pod in plan.delete:
            self._delete_pod(pod, deploy)
        self._scaled_down(deploy, pods, plan.delete, now)
        if plan.create or plan.delete:
            pods = [p for p in self._pods_of(deploy) if not is_pod_terminal(p)]
        status, recheck = rollout_status(deploy, pods, current, now, new_rollout)
        if status != deploy.get("status"):
            self.client.update("deployments", {**deploy, "status": status}, namespace, subresource="status")
        if created < plan.create:
            # More to create than one burst: the next burst soon (after a failure, later).
            backlog = BURST_FAILED_RETRY_S if failed else 0.0
            return backlog if recheck is None else min(recheck, backlog)
        return recheck

    def _scaled(self, deploy: dict[str, Any], pod_hash: str, direction: str, count: int, now: float) -> None:
        """ScalingReplicaSet, in Kubernetes' words: the pods of one template hash play the
        part of a ReplicaSet named <deployment>-<hash>."""
        record_event(self.client, deploy, "Normal", "ScalingReplicaSet",
                     f"Scaled {direction} replica set {deploy['metadata']['name']}-{pod_hash} to {count}",
                     COMPONENT, now)

    def _scaled_down(self, deploy: dict[str, Any], pods: list[dict[str, Any]], deleted: list[dict[str, Any]],
                     now: float) -> None:
        def hash_of(pod: dict[str, Any]) -> str:
            return str((pod["metadata"].get("labels") or {}).get(HASH_LABEL, ""))

        for pod_hash in sorted({hash_of(p) for p in deleted}):
            left = sum(1 for p in pods if hash_of(p) == pod_hash) - sum(1 for p in deleted if hash_of(p) == pod_hash)
            self._scaled(deploy, pod_hash, "down", left, now)

    def _pods_of(self, deploy: dict[str, Any]) -> list[dict[str, Any]]:
        uid = deploy["metadata"]["uid"]
        items = self.client.list("pods", deploy["metadata"]["namespace"])["items"]
        return [p for p in items if (controller_of(p) or {}).get("uid") == uid]

    def _ensure_revision(self, deploy: dict[str, Any], current: str) -> tuple[dict[str, Any], bool]:
        """Number the template: a hash not seen last time starts revision N+1."""
        annotations = deploy["metadata"].get("annotations") or {}
        if annotations.get(TEMPLATE_HASH) == current and REVISION in annotations:
            return deploy, False
        try:
            revision = int(annotations.get(REVISION, "0")) + 1
        except ValueError:
            revision = 1
        patch = {"metadata": {"resourceVersion": deploy["metadata"]["resourceVersion"],
                              "annotations": {REVISION: str(revision), TEMPLATE_HASH: current}}}
        deploy = self.client.patch("deployments", deploy["metadata"]["name"], patch, deploy["metadata"]["namespace"])
        return deploy, True

    def _create_pod(self, deploy: dict[str, Any], current: str, now: float) -> bool:
        m = deploy["metadata"]
        template = deploy["spec"]["template"]
        tmeta = template.get("metadata") or {}
        pod_meta: dict[str, Any] = {
            "namespace": m["namespace"],
            "labels": {**(tmeta.get("labels") or {}), HASH_LABEL: current},
            "ownerReferences": [owner_reference(deploy)],
        }
        if tmeta.get("annotations"):
            pod_meta["annotations"] = dict(tmeta["annotations"])
        for _ in range(3):  # a clash of the random suffix is rare; try another
            suffix = "".join(secrets.choice(SAFE_ALPHABET) for _ in range(5))
            name = f"{m['name']}-{current}-{suffix}"
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {**pod_meta, "name": name}, "spec": template["spec"]}
            try:
                self.client.create("pods", pod, m["namespace"])
                record_event(self.client, deploy, "Normal", "SuccessfulCreate", f"Created pod: {name}", COMPONENT,
                             now)
                return True
            except ApiError as err:
                if err.reason == "AlreadyExists":
                    continue
                # The template cannot make a valid pod (or the namespace is going away): say
                # so on the Deployment instead of retrying in a tight loop.
                record_event(self.client, deploy, "Warning", "FailedCreate", f"Error creating pod: {err}",
                             COMPONENT, now)
                return False
        return False

    def _delete_pod(self, pod: dict[str, Any], deploy: dict[str, Any] | None = None) -> None:
        m = pod["metadata"]
        try:
            self.client.delete("pods", m["name"], m["namespace"], preconditions_uid=m.get("uid"))
        except ApiError as err:
            if err.code not in (404, 409):
                raise
            return
        if deploy is not None:
            record_event(self.client, deploy, "Normal", "SuccessfulDelete", f"Deleted pod: {m['name']}", COMPONENT)

    def _replace_finished(self, deploy: dict[str, Any], pod: dict[str, Any], now: float) -> None:
        """A pod of a Deployment that ended (Failed, e.g. evicted) is deleted so that a fresh
        one takes its place; the Event keeps the reason after the pod is gone."""
        status = pod.get("status") or {}
        why = status.get("reason") or status.get("message") or status.get("phase", "")
        record_event(self.client, deploy, "Normal", "ReplacingFinishedPod",
                     f"Pod {pod['metadata']['name']} ended ({why}); replacing it", COMPONENT, now)
        self._delete_pod(pod, deploy)


def _deployment_key(obj: dict[str, Any]) -> Key | None:
    m = obj.get("metadata") or {}
    return (m["namespace"], m["name"]) if m.get("name") and m.get("namespace") else None


def _owner_key(pod: dict[str, Any]) -> Key | None:
    ref = controller_of(pod)
    if not ref or ref.get("kind") != "Deployment" or not ref.get("apiVersion", "").startswith("apps/"):
        return None
    return (pod["metadata"].get("namespace", ""), ref.get("name", ""))
