"""The master's Prometheus metrics: the exposition format, and values that move with the cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sigma.api import master_metrics as metrics
from sigma.api.master_metrics import CONTENT_TYPE, classify
from sigma.api.server import create_app
from tests.registry_client import admitted_registry


def parse(text: str) -> dict[str, float]:
    """Every sample, through prometheus-client's own parser (which refuses malformed lines):
    {"name{labels}": value}, labels in name order (as the client library writes them)."""
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            key = sample.name + (f"{{{labels}}}" if labels else "")
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = sample.value
    return samples


def test_the_process_metrics_are_exported_beside_the_masters_own(api: Api) -> None:
    samples = scrape(api)
    assert samples["process_cpu_seconds_total"] > 0
    assert samples["process_resident_memory_bytes"] > 0
    assert "python_info" in {k.split("{")[0] for k in samples}


def test_large_values_keep_every_digit(api: Api) -> None:
    metrics.METRICS.victims.labels("test-large").inc(8 * 2**30)  # 8 GiB worth of count: no 8.58993e+09
    text = api.get("/metrics").text
    assert 'sigma_scheduler_preemption_victims_total{scheduler="test-large"} 8.589934592e+09' in text \
        or 'sigma_scheduler_preemption_victims_total{scheduler="test-large"} 8589934592.0' in text


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("GET", "/api/v1/pods", "", ("LIST", "pods")),
    ("GET", "/api/v1/namespaces/default/pods", "watch=true", ("WATCH", "pods")),
    ("GET", "/api/v1/namespaces/default/pods/web-1", "", ("GET", "pods")),
    ("POST", "/api/v1/namespaces/default/pods/web-1/binding", "", ("POST", "pods/binding")),
    ("PATCH", "/apis/apps/v1/namespaces/default/deployments/web/scale", "", ("PATCH", "deployments/scale")),
    ("GET", "/apis/sigma.io/v1/nodemetrics", "", ("LIST", "nodemetrics")),
    ("GET", "/api/v1/nosuchthings", "", ("GET", "")),  # unknown: no resource label
    ("GET", "/healthz", "", None),
    ("GET", "/ui/events", "", None),
])
def test_requests_are_labelled_by_verb_and_resource_never_by_name(
        method: str, path: str, query: str, expected: tuple[str, str] | None) -> None:
    assert classify(method, path, query) == expected


class Api:
    """The master's ASGI app in this process (so the hooks' registry is the one scraped)."""

    def __init__(self, app: Any) -> None:
        self.transport = httpx.ASGITransport(app=app)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url="http://master") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(call())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


@pytest.fixture
def api() -> Iterator[Api]:
    with admitted_registry() as registry:
        yield Api(create_app(registry))


def scrape(api: Api) -> dict[str, float]:
    r = api.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == CONTENT_TYPE
    return parse(r.text)


def test_api_requests_move_the_counters_and_the_latency_histogram(api: Api) -> None:
    key = 'sigma_apiserver_request_total{code="200",resource="nodes",verb="LIST"}'
    before = scrape(api).get(key, 0)
    for _ in range(3):
        assert api.get("/api/v1/nodes").status_code == 200
    assert api.get("/api/v1/nodes/missing").status_code == 404
    after = scrape(api)
    assert after[key] == before + 3
    assert after['sigma_apiserver_request_total{code="404",resource="nodes",verb="GET"}'] >= 1
    assert after['sigma_apiserver_request_duration_seconds_count{resource="nodes",verb="LIST"}'] >= 3


def test_batch_allocatable_usage_and_forecast_error_come_from_the_store(api: Api) -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "m-1"}}
    assert api.post("/api/v1/nodes", json=node).status_code == 201
    status = {"status": {"capacity": {"cpu": "4", "memory": "8Gi", "sigma.io/batch-cpu": "1500",
                                      "sigma.io/batch-memory": "2147483648"},
                         "allocatable": {"cpu": "4", "memory": "8Gi", "sigma.io/batch-cpu": "1500",
                                         "sigma.io/batch-memory": "2147483648"}}}
    r = api.patch("/api/v1/nodes/m-1/status", json=status, headers={"content-type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    metric = {"apiVersion": "sigma.io/v1", "kind": "NodeMetric", "metadata": {"name": "m-1"},
              "status": {"timestamp": 1.0, "prod": {"cpu_millis": 1200, "memory_bytes": 1000},
                         "batch": {"cpu_millis": 300, "memory_bytes": 500}}}
    assert api.post("/apis/sigma.io/v1/nodemetrics", json=metric).status_code == 201
    scaler = {"apiVersion": "sigma.io/v1", "kind": "PredictiveScaler", "metadata": {"name": "web"},
              "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                       "metric": {"type": "cpu"}, "targetPerReplica": 500, "maxReplicas": 5},  # a valid spec
              "status": {"forecastError": 0.12}}
    assert api.post("/apis/sigma.io/v1/namespaces/default/predictivescalers", json=scaler).status_code == 201
    samples = scrape(api)
    assert samples['sigma_node_batch_allocatable_cpu_cores{node="m-1"}'] == 1.5
    assert samples['sigma_node_batch_allocatable_memory_bytes{node="m-1"}'] == 2147483648
    assert samples['sigma_node_cpu_usage_cores{node="m-1",tier="prod"}'] == 1.2
    assert samples['sigma_node_memory_usage_bytes{node="m-1",tier="batch"}'] == 500
    assert samples['sigma_predictivescaler_forecast_error_ratio{name="web",namespace="default"}'] == 0.12
    # A node that goes away leaves the gauges with it.
    assert api.delete("/api/v1/nodes/m-1").status_code == 200
    assert 'sigma_node_batch_allocatable_cpu_cores{node="m-1"}' not in scrape(api)


def test_the_hooks_for_schedulers_and_evictions_show_up_in_the_scrape(api: Api) -> None:
    before = scrape(api)
    metrics.record_scheduling_attempt("sigma-scheduler", "scheduled", 0.002)
    metrics.record_scheduling_attempt("sigma-scheduler", "unschedulable", 0.004)
    metrics.set_pending_pods("fuxi-scheduler", 12)
    metrics.record_preemption("sigma-scheduler", victims=2)
    metrics.record_eviction("MemoryPressure", "sigma-agent")
    after = scrape(api)

    def moved(key: str) -> float:
        return after[key] - before.get(key, 0)

    assert moved('sigma_scheduler_attempts_total{result="scheduled",scheduler="sigma-scheduler"}') == 1
    assert moved('sigma_scheduler_attempt_duration_seconds_count{result="unschedulable",'
                 'scheduler="sigma-scheduler"}') == 1
    assert after['sigma_scheduler_pending_pods{scheduler="fuxi-scheduler"}'] == 12
    assert moved('sigma_scheduler_preemptions_total{scheduler="sigma-scheduler"}') == 1
    assert moved('sigma_scheduler_preemption_victims_total{scheduler="sigma-scheduler"}') == 2
    assert moved('sigma_pod_evictions_total{component="sigma-agent",reason="MemoryPressure"}') == 1
