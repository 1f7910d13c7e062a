"""Job, CronJob and PodDisruptionBudget end to end: a real master and agent, driven by the
unmodified kubectl and the kubernetes client. The Job back-off is shortened with a master
option (job_backoff_base_s) so that a failing Job reaches its limit quickly."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from sigma.bench.agentproc import AgentProcess
from tests.harness import MasterProcess
from tests.kubectl_cluster import KubectlCluster
from tests.kubectl_cluster import wait_for as shared_wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
              pytest.mark.skipif(os.geteuid() != 0, reason="the agent needs root for cgroups")]

NODE = "jobs-node"


Cluster = KubectlCluster


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0) -> Any:
    return shared_wait_for(what, probe, timeout, 0.3)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("jobs")
    with MasterProcess(tmp, extra_args=("--option", "job_backoff_base_s=0.2")) as master, \
            AgentProcess(tmp, master.url, NODE, cpus="4", memory="4Gi"):
        c = Cluster(master)
        wait_for("the node", lambda: c.kubectl("get", "node", NODE, check=False).returncode == 0)
        yield c


def job_yaml(name: str, command: str, **spec: Any) -> str:
    body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                                                    "containers": [{"name": "main", "command": ["sh", "-c", command],
                                                                    "resources": {"requests": {"cpu": "50m"}}}]}}}}
    return json.dumps(body)


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or []
                 if c["type"] == ctype and c["status"] == "True"), None)


def test_a_job_of_three_completions_two_at_a_time_completes(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=job_yaml("three", "sleep 0.5", completions=3, parallelism=2))
    cluster.kubectl("wait", "--for=condition=complete", "job/three", "--timeout=90s")
    job = cluster.get("job", "three")
    assert job["status"]["succeeded"] == 3 and job["status"].get("active", 0) == 0
    assert job["status"]["completionTime"] >= job["status"]["startTime"]
    pods = cluster.get("pods", "-l", "batch.kubernetes.io/job-name=three")["items"]
    assert len(pods) == 3 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    assert all(not p["metadata"].get("finalizers") for p in pods)  # counted, then released
    table = cluster.kubectl("get", "job", "three").stdout
    assert "Complete" in table and "3/3" in table


def test_a_failing_job_stops_at_its_backoff_limit(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=job_yaml("failing", "exit 3", backoffLimit=1))
    job = wait_for("Failed", lambda: condition(cluster.get("job", "failing"), "Failed"), timeout=90)
    assert (job["reason"], job["message"]) == ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    assert cluster.get("job", "failing")["status"]["failed"] == 2
    events = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=failing").stdout
    assert "BackoffLimitExceeded" in events


def test_indexed_job_gives_each_pod_its_index(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=job_yaml("indexed", "echo index=$JOB_COMPLETION_INDEX",
                                                        completions=3, parallelism=3, completionMode="Indexed"))
    cluster.kubectl("wait", "--for=condition=complete", "job/indexed", "--timeout=90s")
    assert cluster.get("job", "indexed")["status"]["completedIndexes"] == "0-2"
    pods = cluster.get("pods", "-l", "batch.kubernetes.io/job-name=indexed")["items"]
    indices = sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods)
    assert indices == ["0", "1", "2"]
    for pod in pods:
        index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        logs = cluster.kubectl("logs", pod["metadata"]["name"]).stdout
        assert f"index={index}" in logs


def test_ttl_after_finished_deletes_the_job_and_a_deadline_fails_one(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=job_yaml("short-lived", "true", ttlSecondsAfterFinished=1))
    cluster.kubectl("apply", "-f", "-", input=job_yaml("too-slow", "sleep 60", activeDeadlineSeconds=2))
    wait_for("the finished job deleted",
             lambda: cluster.kubectl("get", "job", "short-lived", check=False).returncode != 0, timeout=90)
    failed = wait_for("DeadlineExceeded", lambda: condition(cluster.get("job", "too-slow"), "Failed"), timeout=60)
    assert (failed["reason"], failed["message"]) == ("DeadlineExceeded", "Job was active longer than specified "
                                                                         "deadline")


def test_restart_policy_always_and_a_bad_zone_are_refused(cluster: Cluster) -> None:
    bad = json.loads(job_yaml("always", "true"))
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    refused = cluster.kubectl("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert refused.returncode != 0
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Always"' in refused.stderr
    refused = cluster.kubectl("create", "cronjob", "zoned", "--image=busybox", "--schedule=* * * * *",
                              "--dry-run=client", "-o", "json", check=False)
    cj = json.loads(refused.stdout)
    cj["spec"]["timeZone"] = "Mars/Olympus"
    result = cluster.kubectl("apply", "-f", "-", input=json.dumps(cj), check=False)
    assert result.returncode != 0 and "spec.timeZone" in result.stderr


def test_kubectl_create_job_from_a_cronjob(cluster: Cluster) -> None:
    cj = json.loads(cluster.kubectl("create", "cronjob", "nightly", "--image=busybox", "--schedule=0 3 * * *",
                                    "--dry-run=client", "-o", "json").stdout)
    template = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    template["containers"][0] = {"name": "nightly", "command": ["sh", "-c", "echo nightly"],
                                 "resources": {"requests": {"cpu": "50m"}}}
    cj["spec"]["concurrencyPolicy"] = "Forbid"
    cluster.kubectl("apply", "-f", "-", input=json.dumps(cj))
    table = cluster.kubectl("get", "cronjob", "nightly").stdout
    assert "0 3 * * *" in table and "<none>" in table  # no time zone, never scheduled yet
    cluster.kubectl("create", "job", "nightly-manual", "--from=cronjob/nightly")
    job = cluster.get("job", "nightly-manual")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    cluster.kubectl("wait", "--for=condition=complete", "job/nightly-manual", "--timeout=90s")


def deployment(name: str, replicas: int) -> str:
    return json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                       "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                                "template": {"metadata": {"labels": {"app": name}},
                                             "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                                                 {"name": "main", "command": ["sleep", "3600"],
                                                  "resources": {"requests": {"cpu": "50m"}}}]}}}})


def ready_pods(cluster: Cluster, app: str) -> list[dict[str, Any]]:
    pods = cluster.get("pods", "-l", f"app={app}")["items"]
    return [p for p in pods if condition(p, "Ready") and not p["metadata"].get("deletionTimestamp")]


def test_a_budget_refuses_an_eviction_with_429_until_enough_pods_are_healthy(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=deployment("guarded", 2))
    cluster.kubectl("create", "pdb", "guarded", "--selector=app=guarded", "--min-available=2")
    wait_for("two ready pods", lambda: len(ready_pods(cluster, "guarded")) == 2)
    wait_for("the budget counted", lambda: cluster.get("pdb", "guarded")["status"].get("currentHealthy") == 2)
    config = client.Configuration()
    config.host = cluster.master.url
    with client.ApiClient(config) as api:
        core = client.CoreV1Api(api)
        victim = ready_pods(cluster, "guarded")[0]["metadata"]["name"]
        eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name=victim, namespace="default"))
        with pytest.raises(ApiException) as refused:
            core.create_namespaced_pod_eviction(victim, "default", eviction)
        assert refused.value.status == 429
        body = json.loads(refused.value.body)
        assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
        assert body["details"]["causes"][0]["reason"] == "DisruptionBudget"
        cluster.kubectl("scale", "deployment", "guarded", "--replicas=3")
        wait_for("one disruption allowed", lambda: cluster.get("pdb", "guarded")["status"]["disruptionsAllowed"] == 1)
        core.create_namespaced_pod_eviction(victim, "default", eviction)
        # The eviction used the one disruption: the budget allows none until the pod is replaced.
        assert cluster.get("pdb", "guarded")["status"]["disruptionsAllowed"] == 0
        gone = cluster.kubectl("get", "pod", victim, "-o", "json", check=False)
        assert gone.returncode != 0 or json.loads(gone.stdout)["metadata"].get("deletionTimestamp")


def test_drain_respects_the_budget_and_pending_pods_schedule_after_uncordon(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=deployment("drained", 2))
    cluster.kubectl("create", "pdb", "drained", "--selector=app=drained", "--max-unavailable=0")
    wait_for("two ready pods", lambda: len(ready_pods(cluster, "drained")) == 2)
    wait_for("the budget counted", lambda: cluster.get("pdb", "drained")["status"].get("desiredHealthy") == 2)
    drain = cluster.kubectl("drain", NODE, "--pod-selector=app=drained", "--timeout=8s", check=False)
    assert drain.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in drain.stderr + drain.stdout
    assert len(ready_pods(cluster, "drained")) == 2  # the budget held: nothing evicted
    assert cluster.get("node", NODE)["spec"].get("unschedulable") is True
    # With the budget gone the drain evicts; the replacements wait for the cordoned node.
    cluster.kubectl("delete", "pdb", "drained")
    cluster.kubectl("drain", NODE, "--pod-selector=app=drained", "--timeout=60s")
    pending = wait_for("replacements pending", lambda: [
        p for p in cluster.get("pods", "-l", "app=drained")["items"] if not p["spec"].get("nodeName")])
    assert pending
    uncordoned = cluster.kubectl("uncordon", NODE)
    assert uncordoned.returncode == 0
    wait_for("both replacements running", lambda: len(ready_pods(cluster, "drained")) == 2, timeout=30)
    # Every replacement was bound after the uncordon, not by a back-off that outlived it.
    events = cluster.get("events", "--field-selector", "reason=Scheduled")["items"]
    names = {p["metadata"]["name"] for p in pending}
    assert names <= {e["involvedObject"]["name"] for e in events}
