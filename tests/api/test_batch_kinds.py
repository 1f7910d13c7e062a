"""Job, CronJob and PodDisruptionBudget in the API (in process): defaults, the generated
selector, 422s naming the field, and the eviction subresource honouring budgets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sigma.api.errors import ApiError
from sigma.client.local import LocalClient
from tests.registry_client import admitted_client


@pytest.fixture
def client() -> Iterator[LocalClient]:
    with admitted_client() as local:
        yield local


def job(**spec: Any) -> dict[str, Any]:
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "command": ["true"]}]}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {"template": template, **spec}}


def causes(client: LocalClient, resource: str, obj: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ApiError) as refused:
        client.create(resource, obj, "default")
    assert refused.value.code == 422
    return [(c.field, c.message) for c in refused.value.causes]


def test_job_defaults_and_generated_selector(client: LocalClient) -> None:
    created = client.create("jobs", job(), "default")
    spec, uid = created["spec"], created["metadata"]["uid"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"], spec["completionMode"]) == \
        (1, 1, 6, "NonIndexed")
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    labels = spec["template"]["metadata"]["labels"]
    assert labels["batch.kubernetes.io/job-name"] == "j" and labels["controller-uid"] == uid


def test_job_validation_names_the_field(client: LocalClient) -> None:
    assert ("spec.parallelism", "Invalid value: -1: must be greater than or equal to 0") in \
        causes(client, "jobs", job(parallelism=-1))
    always = job()
    always["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert ("spec.template.spec.restartPolicy", 'Unsupported value: "Always": supported values: "OnFailure", '
            '"Never"') in causes(client, "jobs", always)
    assert ("spec.completions", "Required value: when completion mode is Indexed") in \
        causes(client, "jobs", job(completionMode="Indexed", parallelism=2))
    assert any(f == "spec.selector" for f, _ in causes(client, "jobs", job(selector={"matchLabels": {"a": "b"}})))


def test_job_template_is_immutable(client: LocalClient) -> None:
    created = client.create("jobs", job(), "default")
    created["spec"]["template"]["spec"]["containers"][0]["command"] = ["false"]
    with pytest.raises(ApiError) as refused:
        client.update("jobs", created, "default")
    assert refused.value.causes[0].field == "spec.template"
    created = client.get("jobs", "j", "default")
    created["spec"]["parallelism"] = 3
    assert client.update("jobs", created, "default")["spec"]["parallelism"] == 3


def test_cron_job_schedule_and_zone_are_checked(client: LocalClient) -> None:
    cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
          "spec": {"schedule": "61 * * * *", "timeZone": "Nowhere/Land", "jobTemplate": {"spec": job()["spec"]}}}
    fields = [f for f, _ in causes(client, "cronjobs", cj)]
    assert fields == ["spec.timeZone", "spec.schedule"]
    cj["spec"].update(schedule="@hourly", timeZone="Asia/Shanghai")
    created = client.create("cronjobs", cj, "default")
    assert (created["spec"]["concurrencyPolicy"], created["spec"]["successfulJobsHistoryLimit"],
            created["spec"]["failedJobsHistoryLimit"]) == ("Allow", 3, 1)


def test_pdb_validation(client: LocalClient) -> None:
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"},
           "spec": {"minAvailable": 1, "maxUnavailable": "10%", "selector": {}}}
    assert causes(client, "poddisruptionbudgets", pdb)[0][0] == "spec"
    pdb["spec"] = {"minAvailable": "150%"}
    assert causes(client, "poddisruptionbudgets", pdb) == [("spec.minAvailable",
                                                          'Invalid value: "150%": must not be greater than 100%')]


def running_pod(client: LocalClient, name: str, ready: bool = True) -> None:
    client.create("pods", {"metadata": {"name": name, "labels": {"app": "a"}},
                           "spec": {"nodeName": "n", "containers": [{"name": "c", "command": ["sleep", "9"]}]}},
                  "default")
    pod = client.get("pods", name, "default")
    pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    client.update("pods", pod, "default", subresource="status")


def budget(client: LocalClient, allowed: int, current: int = 2, desired: int = 2) -> None:
    created = client.create("poddisruptionbudgets", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "b"},
        "spec": {"minAvailable": desired, "selector": {"matchLabels": {"app": "a"}}}}, "default")
    created["status"] = {"observedGeneration": 1, "disruptionsAllowed": allowed, "currentHealthy": current,
                         "desiredHealthy": desired, "expectedPods": current}
    client.update("poddisruptionbudgets", created, "default", subresource="status")


def test_eviction_is_refused_with_429_when_the_budget_allows_none(client: LocalClient) -> None:
    running_pod(client, "p1")
    budget(client, allowed=0)
    with pytest.raises(ApiError) as refused:
        client.evict("p1", "default")
    assert (refused.value.code, refused.value.reason) == (429, "TooManyRequests")
    assert refused.value.message == "Cannot evict pod as it would violate the pod's disruption budget."
    assert refused.value.causes[0].message == "The disruption budget b needs 2 healthy pods and has 2 currently"
    assert client.get("pods", "p1", "default")  # still there


def test_eviction_uses_a_disruption_and_records_the_pod(client: LocalClient) -> None:
    running_pod(client, "p1")
    budget(client, allowed=1, current=3)
    client.evict("p1", "default")
    status = client.get("poddisruptionbudgets", "b", "default")["status"]
    assert status["disruptionsAllowed"] == 0 and "p1" in status["disruptedPods"]
    assert status["conditions"][0]["reason"] == "InsufficientPods"


def test_a_not_ready_pod_goes_when_the_budget_is_healthy(client: LocalClient) -> None:
    running_pod(client, "sick", ready=False)
    budget(client, allowed=0, current=2, desired=2)
    client.evict("sick", "default")
    status = client.get("poddisruptionbudgets", "b", "default")["status"]
    assert status["disruptionsAllowed"] == 0 and "disruptedPods" not in status
