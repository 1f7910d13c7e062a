"""The Deployment and ReplicaSet controllers together over a real registry (SQLite in memory),
the tests playing the agent (bind, Ready, finish deletions) so each step can be checked; and
the upgrade from the pre-ReplicaSet controller, which must keep every pod."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from sigma.api.objects import controller_of, is_pod_ready, now_rfc3339
from sigma.client.local import LocalClient
from sigma.master.controllers import deployment as legacy
from sigma.master.controllers.deployment_plan import REVISION_HISTORY
from sigma.master.controllers.deployment_rs import DeploymentController
from sigma.master.controllers.replicaset import ReplicaSetController
from sigma.master.controllers.rollout import HASH_LABEL, REVISION, fenceposts, is_active, template_hash

NS = "default"


def deployment(name: str = "web", replicas: int = 3, image: str = "web:1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "image": image}]}}, **spec}}


def pods(client: LocalClient) -> list[dict[str, Any]]:
    return client.list("pods", NS)["items"]


def replica_sets(client: LocalClient) -> dict[str, dict[str, Any]]:
    return {rs["metadata"]["name"]: rs for rs in client.list("replicasets", NS)["items"]}


def play_agent(client: LocalClient) -> None:
    for pod in pods(client):
        m = pod["metadata"]
        if m.get("deletionTimestamp"):
            client.delete("pods", m["name"], NS, grace_period_seconds=0)
            continue
        if not pod["spec"].get("nodeName"):
            client.bind(m["name"], NS, "node-1")
        if not is_pod_ready(pod):
            client.patch("pods", m["name"], {"status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": now_rfc3339(time.time())}]}}, NS,
                subresource="status")


class Controllers:
    def __init__(self, client: LocalClient) -> None:
        self.client = client
        self.deploy = DeploymentController(client)
        self.rs = ReplicaSetController(client)

    def sync(self, name: str = "web") -> None:
        """One round: the Deployment, then each ReplicaSet, then the Deployment's status."""
        self.deploy.sync(NS, name)
        for rs in list(replica_sets(self.client)):
            self.rs.sync(NS, rs)
        self.deploy.sync(NS, name)

    def converge(self, name: str = "web", steps: int = 60, check: Callable[[], None] | None = None) -> None:
        for _ in range(steps):
            self.sync(name)
            if check:
                check()
            d = self.client.get("deployments", name, NS)
            status = d.get("status") or {}
            if (status.get("observedGeneration") == d["metadata"]["generation"]
                    and status.get("updatedReplicas") == status.get("replicas") == d["spec"]["replicas"]
                    and status.get("availableReplicas") == d["spec"]["replicas"]
                    and not [p for p in pods(self.client) if p["metadata"].get("deletionTimestamp")]):
                return
            play_agent(self.client)
        raise AssertionError(f"no convergence: {self.client.get('deployments', name, NS)['status']}")


def set_image(client: LocalClient, image: str) -> None:
    client.patch("deployments", "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": image}]}}}}, NS, patch_type="strategic")


def kubectl_undo(client: LocalClient, revision: int = 0) -> None:
    """What `kubectl rollout undo` sends: the ReplicaSet's template (hash label removed) and
    annotations, as a JSON patch of the Deployment."""
    d = client.get("deployments", "web", NS)
    owned = [rs for rs in replica_sets(client).values()
             if (controller_of(rs) or {}).get("uid") == d["metadata"]["uid"]]
    by_rev = sorted(owned, key=lambda rs: int(rs["metadata"]["annotations"][REVISION]))
    target = by_rev[-2] if revision == 0 else next(rs for rs in owned
                                                  if rs["metadata"]["annotations"][REVISION] == str(revision))
    template = target["spec"]["template"]
    template["metadata"]["labels"].pop(HASH_LABEL)
    client.patch("deployments", "web", [{"op": "replace", "path": "/spec/template", "value": template}], NS,
                 patch_type="json")


def test_a_deployment_owns_a_replica_set_that_owns_its_pods(client: LocalClient) -> None:
    d = client.create("deployments", deployment(replicas=3), NS)
    ctl = Controllers(client)
    ctl.converge()
    pod_hash = template_hash(d["spec"]["template"])
    (rs,) = replica_sets(client).values()
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert controller_of(rs) == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                 "uid": d["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", HASH_LABEL: pod_hash}
    assert rs["metadata"]["annotations"][REVISION] == "1"
    assert rs["status"] == {"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 3, "availableReplicas": 3,
                            "observedGeneration": 1}
    for pod in pods(client):
        assert controller_of(pod)["uid"] == rs["metadata"]["uid"]
        assert pod["metadata"]["labels"] == {"app": "web", HASH_LABEL: pod_hash}
    d = client.get("deployments", "web", NS)
    assert d["metadata"]["annotations"][REVISION] == "1"
    conditions = {c["type"]: c["reason"] for c in d["status"]["conditions"]}
    assert conditions == {"Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}


@pytest.mark.parametrize(("replicas", "surge", "unavailable"), [(4, 1, 0), (4, 0, 1), (5, "25%", "25%"),
                                                                  (3, "100%", 0)])
def test_an_update_makes_a_new_replica_set_within_surge_and_unavailability(
        client: LocalClient, replicas: int, surge: Any, unavailable: Any) -> None:
    client.create("deployments", deployment(replicas=replicas, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}), NS)
    ctl = Controllers(client)
    ctl.converge()
    max_surge, max_unavailable = fenceposts(client.get("deployments", "web", NS))
    mixed = []

    def check() -> None:
        active = [p for p in pods(client) if is_active(p)]
        assert len(active) <= replicas + max_surge
        assert sum(is_pod_ready(p) for p in active) >= replicas - max_unavailable
        mixed.append(len({p["spec"]["containers"][0]["image"] for p in active}) > 1)

    set_image(client, "web:2")
    ctl.converge(check=check)
    rss = replica_sets(client)
    assert len(rss) == 2 and any(mixed)
    sizes = sorted((rs["metadata"]["annotations"][REVISION], rs["spec"]["replicas"]) for rs in rss.values())
    assert sizes == [("1", 0), ("2", replicas)]  # the old one is kept, scaled to zero
    assert {p["spec"]["containers"][0]["image"] for p in pods(client)} == {"web:2"}
    assert client.get("deployments", "web", NS)["metadata"]["annotations"][REVISION] == "2"


def test_recreate_scales_the_old_replica_set_to_zero_before_the_new_one_starts(client: LocalClient) -> None:
    client.create("deployments", deployment(replicas=2, strategy={"type": "Recreate"}), NS)
    ctl = Controllers(client)
    ctl.converge()
    set_image(client, "web:2")
    ctl.sync()
    assert len(replica_sets(client)) == 1, "the new ReplicaSet waits for the old pods to be gone"
    assert all(p["metadata"].get("deletionTimestamp") for p in pods(client))
    ctl.converge()
    assert {p["spec"]["containers"][0]["image"] for p in pods(client)} == {"web:2"}


def test_undo_brings_an_old_replica_set_back_as_the_next_revision(client: LocalClient) -> None:
    client.create("deployments", deployment(replicas=2), NS)
    ctl = Controllers(client)
    ctl.converge()
    first = next(iter(replica_sets(client)))
    set_image(client, "web:2")
    ctl.converge()
    set_image(client, "web:3")
    ctl.converge()
    kubectl_undo(client)  # back to web:2, revision 2 -> 4
    ctl.converge()
    assert {p["spec"]["containers"][0]["image"] for p in pods(client)} == {"web:2"}
    revisions = {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs["metadata"]["annotations"]
                 for rs in replica_sets(client).values()}
    assert revisions["web:2"][REVISION] == "4" and revisions["web:2"][REVISION_HISTORY] == "2"
    kubectl_undo(client, revision=1)
    ctl.converge()
    assert {p["spec"]["containers"][0]["image"] for p in pods(client)} == {"web:1"}
    assert replica_sets(client)[first]["metadata"]["annotations"][REVISION] == "5"
    assert client.get("deployments", "web", NS)["metadata"]["annotations"][REVISION] == "5"
    assert len(replica_sets(client)) == 3


def test_revision_history_limit_deletes_the_oldest_replica_sets_scaled_to_zero(client: LocalClient) -> None:
    client.create("deployments", deployment(replicas=1, revisionHistoryLimit=1), NS)
    ctl = Controllers(client)
    for image in ("web:1", "web:2", "web:3", "web:4"):
        set_image(client, image)
        ctl.converge()
        ctl.sync()
    images = sorted(rs["spec"]["template"]["spec"]["containers"][0]["image"] for rs in replica_sets(client).values())
    assert images == ["web:3", "web:4"]


def test_a_paused_deployment_rolls_nothing_out_but_follows_replicas(client: LocalClient) -> None:
    client.create("deployments", deployment(replicas=2), NS)
    ctl = Controllers(client)
    ctl.converge()
    client.patch("deployments", "web", {"spec": {"paused": True}}, NS)
    set_image(client, "web:2")
    client.patch("deployments", "web", {"spec": {"replicas": 3}}, NS)
    for _ in range(3):
        ctl.sync()
        play_agent(client)
    assert len(replica_sets(client)) == 1
    assert [p["spec"]["containers"][0]["image"] for p in pods(client)] == ["web:1"] * 3
    progressing = next(c for c in client.get("deployments", "web", NS)["status"]["conditions"]
                       if c["type"] == "Progressing")
    assert progressing["reason"] == "DeploymentPaused"
    client.patch("deployments", "web", {"spec": {"paused": False}}, NS)
    ctl.converge()
    assert {p["spec"]["containers"][0]["image"] for p in pods(client)} == {"web:2"}


def test_a_deployment_of_the_old_controller_is_migrated_without_restarting_a_pod(client: LocalClient) -> None:
    client.create("deployments", deployment(replicas=3), NS)
    old = legacy.DeploymentController(client)
    for _ in range(5):
        old.sync(NS, "web")
        play_agent(client)
    before = {p["metadata"]["uid"] for p in pods(client)}
    assert len(before) == 3 and all(controller_of(p)["kind"] == "Deployment" for p in pods(client))
    # One pod lost its hash label (written by hand, say): it is patched back on.
    victim = pods(client)[0]["metadata"]["name"]
    client.patch("pods", victim, {"metadata": {"labels": {HASH_LABEL: None}}}, NS)
    ctl = Controllers(client)
    ctl.converge()
    after = pods(client)
    assert {p["metadata"]["uid"] for p in after} == before
    (rs,) = replica_sets(client).values()
    assert all(controller_of(p)["uid"] == rs["metadata"]["uid"] for p in after)
    assert all(p["metadata"]["labels"][HASH_LABEL] == rs["spec"]["selector"]["matchLabels"][HASH_LABEL]
               for p in after)
    assert rs["metadata"]["annotations"][REVISION] == "1"
    set_image(client, "web:2")  # and it rolls out as any Deployment
    ctl.converge()
    assert {p["spec"]["containers"][0]["image"] for p in pods(client)} == {"web:2"}


def test_a_deployment_migrated_in_the_middle_of_a_rollout_keeps_both_templates(client: LocalClient) -> None:
    client.create("deployments", deployment(replicas=2, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}), NS)
    old = legacy.DeploymentController(client)
    for _ in range(5):
        old.sync(NS, "web")
        play_agent(client)
    set_image(client, "web:2")
    old.sync(NS, "web")  # one new pod beside the two old ones
    before = {p["metadata"]["uid"] for p in pods(client)}
    ctl = Controllers(client)
    ctl.sync()
    ctl.sync()
    assert {p["metadata"]["uid"] for p in pods(client)} == before
    assert len(replica_sets(client)) == 2
    ctl.converge()
    assert {p["spec"]["containers"][0]["image"] for p in pods(client)} == {"web:2"}


def test_the_replica_set_adopts_orphans_and_releases_pods_that_leave_its_selector(client: LocalClient) -> None:
    client.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphan", "labels": {"app": "x"}},
                           "spec": {"containers": [{"name": "m", "image": "x"}]}}, NS)
    client.create("replicasets", {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "x"},
                                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}},
                                           "template": {"metadata": {"labels": {"app": "x"}},
                                                        "spec": {"containers": [{"name": "m", "image": "x"}]}}}}, NS)
    ctl = ReplicaSetController(client)
    ctl.sync(NS, "x")
    assert len(pods(client)) == 2
    assert controller_of(client.get("pods", "orphan", NS))["name"] == "x"
    client.patch("pods", "orphan", {"metadata": {"labels": {"app": "other"}}}, NS)
    ctl.sync(NS, "x")
    assert controller_of(client.get("pods", "orphan", NS)) is None
    assert len(pods(client)) == 3
    assert client.get("replicasets", "x", NS)["status"]["replicas"] == 2
