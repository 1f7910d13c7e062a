"""The master's Prometheus metrics: the exposition format, and values that move with the cluster."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sigma.api import admission
from sigma.api.registry import Registry
from sigma.api.server import create_app
from sigma.master import metrics
from sigma.master.metrics import Counter, Gauge, Histogram, MetricsRegistry, classify
from sigma.store.sqlite import SqliteStore

# Text format 0.0.4, strictly: names, label sets, and a float (or +Inf/-Inf/NaN) value.
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({NAME})(\{{{LABEL}(?:,{LABEL})*\}})? (-?[0-9.e+-]+|[+-]Inf|NaN)$")
HELP = re.compile(rf"^# HELP ({NAME}) .*$")
TYPE = re.compile(rf"^# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)$")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("",), "gauge": ("",)}


def parse(text: str) -> dict[str, float]:
    """Checks every line and that each sample belongs to the family TYPEd just before it;
    returns {"name{labels}": value}."""
    assert text.endswith("\n")
    samples: dict[str, float] = {}
    family, kind = "", ""
    for line in text.splitlines():
        if m := HELP.match(line):
            family = m.group(1)
            continue
        if m := TYPE.match(line):
            assert m.group(1) == family, f"TYPE of {m.group(1)} without its HELP"
            kind = m.group(2)
            continue
        m = SAMPLE.match(line)
        assert m, f"not a valid sample line: {line!r}"
        assert any(m.group(1) == family + s for s in SUFFIXES[kind]), f"{line!r} outside its family {family}"
        key = m.group(1) + (m.group(2) or "")
        assert key not in samples, f"duplicate sample {key}"
        samples[key] = float(m.group(3))
    return samples


def test_counters_gauges_and_histograms_render_in_the_text_format() -> None:
    reg = MetricsRegistry()
    c = reg.add(Counter("t_requests_total", "Requests.", ("verb",)))
    g = reg.add(Gauge("t_queue", "Queue length."))
    h = reg.add(Histogram("t_seconds", "Latency.", ("verb",), buckets=(0.1, 1.0)))
    c.inc(verb="GET")
    c.inc(2, verb="GET")
    g.set(7)
    for value in (0.05, 0.5, 3.0):
        h.observe(value, verb="GET")
    samples = parse(reg.render())
    assert samples['t_requests_total{verb="GET"}'] == 3
    assert samples["t_queue"] == 7
    # Buckets are cumulative and +Inf equals the count.
    assert samples['t_seconds_bucket{verb="GET",le="0.1"}'] == 1
    assert samples['t_seconds_bucket{verb="GET",le="1"}'] == 2
    assert samples['t_seconds_bucket{verb="GET",le="+Inf"}'] == 3
    assert samples['t_seconds_count{verb="GET"}'] == 3
    assert samples['t_seconds_sum{verb="GET"}'] == pytest.approx(3.55)


def test_label_values_are_escaped() -> None:
    reg = MetricsRegistry()
    reg.add(Gauge("t_g", "G.", ("node",))).set(1, node='a"b\\c\nd')
    assert 't_g{node="a\\"b\\\\c\\nd"} 1' in reg.render().splitlines()
    parse(reg.render())


def test_a_counter_refuses_to_go_down_and_labels_must_match() -> None:
    c = Counter("t_total", "T.", ("a",))
    with pytest.raises(ValueError):
        c.inc(-1, a="x")
    with pytest.raises(ValueError):
        c.inc(b="x")


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
    store = SqliteStore(":memory:")
    registry = Registry(store)
    admission.install(registry)
    admission.bootstrap(registry)
    try:
        yield Api(create_app(registry))
    finally:
        store.close()


def scrape(api: Api) -> dict[str, float]:
    r = api.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(r.text)


def test_api_requests_move_the_counters_and_the_latency_histogram(api: Api) -> None:
    key = 'sigma_apiserver_request_total{verb="LIST",resource="nodes",code="200"}'
    before = scrape(api).get(key, 0)
    for _ in range(3):
        assert api.get("/api/v1/nodes").status_code == 200
    assert api.get("/api/v1/nodes/missing").status_code == 404
    after = scrape(api)
    assert after[key] == before + 3
    assert after['sigma_apiserver_request_total{verb="GET",resource="nodes",code="404"}'] >= 1
    assert after['sigma_apiserver_request_duration_seconds_count{verb="LIST",resource="nodes"}'] >= 3


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
    assert samples['sigma_predictivescaler_forecast_error_ratio{namespace="default",name="web"}'] == 0.12
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

    assert moved('sigma_scheduler_attempts_total{scheduler="sigma-scheduler",result="scheduled"}') == 1
    assert moved('sigma_scheduler_attempt_duration_seconds_count{scheduler="sigma-scheduler",'
                 'result="unschedulable"}') == 1
    assert after['sigma_scheduler_pending_pods{scheduler="fuxi-scheduler"}'] == 12
    assert moved('sigma_scheduler_preemptions_total{scheduler="sigma-scheduler"}') == 1
    assert moved('sigma_scheduler_preemption_victims_total{scheduler="sigma-scheduler"}') == 2
    assert moved('sigma_pod_evictions_total{reason="MemoryPressure",component="sigma-agent"}') == 1
