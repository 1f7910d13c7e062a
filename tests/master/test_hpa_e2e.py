"""`kubectl top` and the HorizontalPodAutoscaler on a real master and agent, driven by the
unmodified kubectl: pods that burn CPU (capped at 200m by their limit, against a 100m
request) make `kubectl autoscale --cpu=50%` scale their Deployment up; an HPA and a
PredictiveScaler on one Deployment are refused; pods without a CPU request leave the HPA
inactive with Kubernetes' reason. The agent reports every second and the HPA controller
syncs every second (master option hpa_period_s) to keep the test short."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.agent_process import AgentProcess
from tests.harness import MasterProcess
from tests.kubectl_cluster import KubectlCluster
from tests.kubectl_cluster import wait_for as shared_wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
              pytest.mark.skipif(os.geteuid() != 0, reason="the agent needs root for cgroups")]

NODE = "hpa-node"


Cluster = KubectlCluster


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 90.0) -> Any:
    return shared_wait_for(what, probe, timeout, 0.5)


def deployment(name: str, command: str, requests: dict[str, str] | None, replicas: int = 1) -> str:
    resources = {"requests": requests, "limits": {"cpu": "200m"}} if requests else {}
    return json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                       "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                                "template": {"metadata": {"labels": {"app": name}},
                                             "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                                                 {"name": "main", "command": ["sh", "-c", command],
                                                  "resources": resources}]}}}})


def scaler(name: str, target: str) -> str:
    return json.dumps({"apiVersion": "sigma.io/v1", "kind": "PredictiveScaler", "metadata": {"name": name},
                       "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                                "metric": {"type": "cpu"}, "targetPerReplica": 200, "minReplicas": 1,
                                "maxReplicas": 3}})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = Path(tmp_path_factory.mktemp("hpa"))
    with MasterProcess(tmp, extra_args=("--option", "hpa_period_s=1")) as master:
        agent = AgentProcess(master.url, tmp / "agent", NODE, extra=("--metrics-interval", "1")).start()
        try:
            c = Cluster(master)
            wait_for("the node", lambda: c.kubectl("get", "node", NODE, check=False).returncode == 0)
            c.kubectl("apply", "-f", "-", input=deployment("burn", "while :; do :; done", {"cpu": "100m"}))
            yield c
        finally:
            agent.stop()


def top(cluster: Cluster, *args: str) -> list[list[str]]:
    result = cluster.kubectl("top", *args, check=False)
    if result.returncode != 0:
        return []
    return [line.split() for line in result.stdout.splitlines()[1:]]


def test_kubectl_top_shows_nodes_pods_and_containers(cluster: Cluster) -> None:
    def busy() -> list[list[str]]:  # the first reading of a new container has no rate yet (0)
        rows = top(cluster, "pods", "-l", "app=burn")
        return rows if rows and rows[0][1] not in ("0", "0m") else []

    rows = wait_for("pod metrics", busy)
    name, cpu, memory = rows[0]
    assert name.startswith("burn-") and re.fullmatch(r"\d+m", cpu) and memory.endswith("Mi")
    assert 100 <= int(cpu[:-1]) <= 250  # a busy loop under a 200m limit
    nodes = top(cluster, "nodes")
    assert nodes and nodes[0][0] == NODE and re.fullmatch(r"\d+m", nodes[0][1]) and nodes[0][2].endswith("%")
    containers = top(cluster, "pods", "--containers", "-A")
    assert any(row[0] == "default" and row[1].startswith("burn-") and row[2] == "main" for row in containers)


def test_kubectl_autoscale_scales_busy_pods_up(cluster: Cluster) -> None:
    cluster.kubectl("autoscale", "deployment", "burn", "--cpu=50%", "--min=1", "--max=3")
    wait_for("three replicas", lambda: cluster.get("deployment", "burn")["spec"]["replicas"] == 3)
    header, row = wait_for("a reading in the HPA's row", lambda: (
        lambda lines: lines if len(lines) > 1 and "<unknown>" not in lines[1] else None)(
        cluster.kubectl("get", "hpa").stdout.splitlines()))
    assert header.split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert re.match(r"burn\s+Deployment/burn\s+cpu: \d+%/50%\s+1\s+3\s+\d", row), row
    hpa = cluster.get("hpa", "burn")
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    reasons = {c["type"]: c["reason"] for c in hpa["status"]["conditions"]}
    assert reasons["ScalingActive"] == "ValidMetricFound"
    described = cluster.kubectl("describe", "hpa", "burn").stdout
    assert "SuccessfulRescale" in described and "above target" in described


def test_an_hpa_and_a_predictive_scaler_never_share_a_target(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=deployment("quiet", "sleep 3600", {"cpu": "10m"}))
    cluster.kubectl("apply", "-f", "-", input=scaler("quiet-forecast", "quiet"))
    refused = cluster.kubectl("autoscale", "deployment", "quiet", "--cpu=50%", "--max=3", check=False)
    assert refused.returncode != 0
    assert 'Deployment "quiet" is already scaled by PredictiveScaler "quiet-forecast"' in refused.stderr
    assert "spec.scaleTargetRef" in refused.stderr
    # And the other way round: the HPA on burn refuses a PredictiveScaler there.
    refused = cluster.kubectl("apply", "-f", "-", input=scaler("burn-forecast", "burn"), check=False)
    assert refused.returncode != 0
    assert 'already scaled by HorizontalPodAutoscaler "burn"' in refused.stderr
    assert cluster.kubectl("get", "hpa", "quiet", check=False).returncode != 0


def test_pods_without_a_cpu_request_leave_the_hpa_inactive(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=deployment("noreq", "sleep 3600", None))
    cluster.kubectl("autoscale", "deployment", "noreq", "--cpu=50%", "--max=3")

    def inactive() -> dict[str, Any] | None:
        conditions = (cluster.get("hpa", "noreq").get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "ScalingActive" and c["status"] == "False"
                     and "missing request" in c["message"]), None)

    condition = wait_for("ScalingActive=False", inactive)
    assert condition["reason"] == "FailedGetResourceMetric"
    assert re.search(r"missing request for cpu in container main of Pod noreq-", condition["message"])
    assert cluster.get("deployment", "noreq")["spec"]["replicas"] == 1


def test_the_kubernetes_client_reads_autoscalers_in_both_versions_and_pod_metrics(cluster: Cluster) -> None:
    from kubernetes import client

    config = client.Configuration()
    config.host = cluster.master.url
    with client.ApiClient(config) as api:
        v2 = client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler("burn", "default")
        assert v2.spec.scale_target_ref.name == "burn" and v2.spec.metrics[0].resource.name == "cpu"
        assert v2.spec.behavior.scale_up.policies[0].type == "Pods"
        v1 = client.AutoscalingV1Api(api).list_namespaced_horizontal_pod_autoscaler("default")
        assert {h.metadata.name: h.spec.target_cpu_utilization_percentage for h in v1.items}["burn"] == 50
        metrics = client.CustomObjectsApi(api).list_namespaced_custom_object("metrics.k8s.io", "v1beta1", "default",
                                                                             "pods", label_selector="app=burn")
        assert metrics["items"] and all(m["containers"][0]["name"] == "main" for m in metrics["items"])
