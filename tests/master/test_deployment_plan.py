"""The pure core of the Deployment controller over ReplicaSets."""

from __future__ import annotations

from typing import Any

from sigma.master.controllers.deployment_plan import (
    REVISION_HISTORY,
    Owned,
    first_size,
    history_to_delete,
    new_replica_set,
    next_revision,
    paused_step,
    recreate_step,
    revision_update,
    rolling_step,
    split,
)
from sigma.master.controllers.rollout import HASH_LABEL, REVISION, template_hash


def deployment(replicas: int = 4, surge: Any = 1, unavailable: Any = 1, image: str = "a:1",
               **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "default", "annotations": {"kubernetes.io/change-cause": "x",
                                                                               REVISION: "3"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "m", "image": image}]}}, **spec}}


def test_the_new_replica_set_carries_the_hash_and_the_deployments_annotations() -> None:
    d = deployment()
    rs = new_replica_set(d, 4, 2)
    pod_hash = template_hash(d["spec"]["template"])
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", HASH_LABEL: pod_hash}
    assert rs["spec"]["template"]["metadata"]["labels"][HASH_LABEL] == pod_hash
    assert rs["metadata"]["annotations"] == {"kubernetes.io/change-cause": "x", REVISION: "4",
                                             "deployment.kubernetes.io/desired-replicas": "4",
                                             "deployment.kubernetes.io/max-replicas": "5"}
    new, old = split(d, [rs, new_replica_set(deployment(image="a:0"), 1, 0)])
    assert new is rs and len(old) == 1
    assert next_revision([rs]) == 5


def test_a_rollback_takes_the_next_revision_and_remembers_the_old_ones() -> None:
    rs = new_replica_set(deployment(), 2, 0)
    assert revision_update(rs, 5) == {REVISION: "5", REVISION_HISTORY: "2"}
    rs["metadata"]["annotations"].update({REVISION: "5", REVISION_HISTORY: "2"})
    assert revision_update(rs, 7) == {REVISION: "7", REVISION_HISTORY: "2,5"}
    assert revision_update(rs, 5) is None


def test_the_rolling_steps_of_kubernetes() -> None:
    d = deployment(replicas=4, surge=1, unavailable=1)
    assert first_size(d, [Owned("old", 4, 4, 1)]) == 1
    # Scale up first, within replicas + maxSurge.
    assert rolling_step(d, Owned("new", 0, 0, 2), [Owned("old", 4, 4, 1)]) == {"new": 1}
    # Then down while availability stays at replicas - maxUnavailable (the new pod is not up yet).
    assert rolling_step(d, Owned("new", 1, 0, 2), [Owned("old", 4, 4, 1)]) == {"old": 3}
    assert rolling_step(d, Owned("new", 1, 0, 2), [Owned("old", 3, 3, 1)]) == {"new": 2}
    assert rolling_step(d, Owned("new", 2, 0, 2), [Owned("old", 3, 3, 1)]) == {}
    # Unhealthy old pods go first, as far as replicas + surge - minAvailable allows (5 - 3).
    assert rolling_step(d, Owned("new", 1, 1, 2), [Owned("old", 4, 1, 1)]) == {"old": 2}
    assert rolling_step(d, Owned("new", 4, 4, 2), [Owned("old", 0, 0, 1)]) == {}
    assert rolling_step(d, Owned("new", 6, 6, 2), []) == {"new": 4}


def test_recreate_and_paused_steps() -> None:
    d = deployment(replicas=3)
    assert recreate_step(d, None, [Owned("old", 3, 3, 1)], True) == {"old": 0}
    assert recreate_step(d, Owned("new", 0, 0, 2), [Owned("old", 0, 0, 1)], True) == {}
    assert recreate_step(d, Owned("new", 0, 0, 2), [Owned("old", 0, 0, 1)], False) == {"new": 3}
    assert paused_step(d, None, [Owned("a", 1, 1, 1), Owned("b", 1, 1, 2)]) == {"b": 2}
    assert paused_step(d, Owned("n", 3, 3, 3), []) == {}


def test_history_keeps_the_newest_old_replica_sets_up_to_the_limit() -> None:
    d = deployment(revisionHistoryLimit=2)
    old = [Owned(f"r{i}", 0, 0, i) for i in (4, 1, 3, 2)] + [Owned("busy", 0, 0, 0, status_replicas=1)]
    assert history_to_delete(d, old) == ["r1", "r2"]  # "busy" still has a pod: kept
    assert history_to_delete(deployment(), old) == []
