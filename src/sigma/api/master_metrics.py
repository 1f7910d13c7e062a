"""Prometheus metrics of the master, through prometheus-client: the master's metric
families, the process's own (CPU seconds, memory, file descriptors) and `GET /metrics`.

Two kinds of values:
- recorded as things happen, through the hooks below (API requests by the middleware; the
  schedulers' attempts, queue length and preemptions; evictions), kept in this process;
- computed at scrape time from the store (per-node batch allocatable published by Level-0,
  prod and batch usage from NodeMetrics, forecast error from PredictiveScalers) by a custom
  collector, so they are never stale and need no controller of their own.

Names follow Prometheus conventions: base units (seconds, bytes, cores), `_total` on
counters (added by the client library), a `sigma_` prefix. The hooks are module functions
on one process-wide set of families (`METRICS`) so any component in the master calls them
without plumbing; tests build their own `MasterMetrics`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The `_created` series double every counter for a timestamp nothing here reads.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = CONTENT_TYPE_LATEST


class MasterMetrics:
    """The master's metric families on a registry of their own, with the process and
    platform collectors. Label `scheduler` is sigma-scheduler or fuxi-scheduler."""

    def __init__(self) -> None:
        self.registry = reg = CollectorRegistry()
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        self.api_requests = Counter(
            "sigma_apiserver_request", "API requests by verb, resource and HTTP code.",
            ("verb", "resource", "code"), registry=reg)
        self.api_latency = Histogram(
            "sigma_apiserver_request_duration_seconds",
            "API request latency by verb and resource (for WATCH: until the stream starts).", ("verb", "resource"),
            registry=reg)
        self.sched_attempts = Counter(
            "sigma_scheduler_attempts", "Scheduling attempts by result (scheduled, unschedulable, error).",
            ("scheduler", "result"), registry=reg)
        self.sched_latency = Histogram(
            "sigma_scheduler_attempt_duration_seconds", "Time of one scheduling attempt, by result.",
            ("scheduler", "result"), registry=reg)
        self.pending = Gauge(
            "sigma_scheduler_pending_pods", "Pods waiting in a scheduler's queue.", ("scheduler",), registry=reg)
        self.preemptions = Counter(
            "sigma_scheduler_preemptions", "Preemptions decided (one per preemptor placed).", ("scheduler",),
            registry=reg)
        self.victims = Counter(
            "sigma_scheduler_preemption_victims", "Pods evicted to make room for a preemptor.", ("scheduler",),
            registry=reg)
        self.evictions = Counter(
            "sigma_pod_evictions", "Pods evicted, by reason and by the component that evicted them.",
            ("reason", "component"), registry=reg)

        self._cluster: Collector | None = None

    def read_cluster_from(self, collector: Collector) -> None:
        """The scrape-time collector of the API this registry serves (one: an app built
        again in the same process, as tests do, replaces it)."""
        if self._cluster is not None:
            self.registry.unregister(self._cluster)
        self.registry.register(collector)
        self._cluster = collector

    def render(self) -> bytes:
        return generate_latest(self.registry)


METRICS = MasterMetrics()


# -- hooks for the master's components -----------------------------------------------------
def record_scheduling_attempt(scheduler: str, result: str, seconds: float) -> None:
    """result: "scheduled", "unschedulable" or "error" (kube-scheduler's three outcomes)."""
    METRICS.sched_attempts.labels(scheduler, result).inc()
    METRICS.sched_latency.labels(scheduler, result).observe(seconds)


def set_pending_pods(scheduler: str, count: int) -> None:
    METRICS.pending.labels(scheduler).set(count)


def record_preemption(scheduler: str, victims: int) -> None:
    METRICS.preemptions.labels(scheduler).inc()
    METRICS.victims.labels(scheduler).inc(victims)


def record_eviction(reason: str, component: str) -> None:
    METRICS.evictions.labels(reason, component).inc()


# -- API requests --------------------------------------------------------------------------
def classify(method: str, path: str, query: str) -> tuple[str, str] | None:
    """(verb, resource) of a Kubernetes API path, as kube-apiserver labels them; None for
    paths outside /api and /apis. Names are left out: they would explode the label set."""
    from sigma.api.server import parse_path  # late: the API module imports this one

    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        target = parse_path(["", *parts[1:]])
    elif len(parts) >= 4 and parts[0] == "apis":
        target = parse_path(parts[1:])
    else:
        return None
    resource = "" if target is None else target.rt.plural + (f"/{target.sub}" if target.sub else "")
    verb = method.upper()
    if verb == "GET" and target is not None and target.name is None:
        verb = "WATCH" if "watch=true" in query or "watch=1" in query else "LIST"
    return verb, resource


class ApiMetricsMiddleware:
    """Counts API requests and times them until the response starts, so a watch is timed
    by how long it took to open, not by how long the client kept it."""

    def __init__(self, app: ASGIApp, metrics: MasterMetrics | None = None) -> None:
        self.app, self.metrics = app, metrics or METRICS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        labels = classify(scope.get("method", ""), scope.get("path", ""), scope.get("query_string", b"").decode(
            "latin-1")) if scope["type"] == "http" else None
        if labels is None:
            await self.app(scope, receive, send)
            return
        verb, resource = labels
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.api_latency.labels(verb, resource).observe(time.perf_counter() - started)
                self.metrics.api_requests.labels(verb, resource, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, timed_send)


# -- computed at scrape time from the store ------------------------------------------------
def _number_or_none(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class ClusterCollector(Collector):
    """The per-node and per-scaler gauges, read from the API registry at each scrape (gone
    nodes and scalers simply disappear)."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        from sigma.api.resources import resource
        from sigma.quantity import QuantityError, memory_bytes

        cpu = GaugeMetricFamily("sigma_node_batch_allocatable_cpu_cores",
                                "Batch CPU allocatable that Level-0 published, per node.", labels=("node",))
        mem = GaugeMetricFamily("sigma_node_batch_allocatable_memory_bytes",
                                "Batch memory allocatable that Level-0 published, per node.", labels=("node",))
        for node in self.registry.list(resource("nodes"))["items"]:
            name, alloc = node["metadata"]["name"], (node.get("status") or {}).get("allocatable") or {}
            try:
                # sigma.io/batch-cpu is counted in milli-cores; both are plain integers.
                if "sigma.io/batch-cpu" in alloc:
                    cpu.add_metric((name,), memory_bytes(alloc["sigma.io/batch-cpu"]) / 1000)
                if "sigma.io/batch-memory" in alloc:
                    mem.add_metric((name,), float(memory_bytes(alloc["sigma.io/batch-memory"])))
            except QuantityError:
                continue
        use_cpu = GaugeMetricFamily("sigma_node_cpu_usage_cores",
                                    "CPU in use per node and tier (prod, batch), from the agent's NodeMetric.",
                                    labels=("node", "tier"))
        use_mem = GaugeMetricFamily("sigma_node_memory_usage_bytes",
                                    "Memory in use per node and tier (prod, batch), from NodeMetric.",
                                    labels=("node", "tier"))
        for nm in self.registry.list(resource("nodemetrics"))["items"]:
            status = nm.get("status") or {}
            for tier in ("prod", "batch"):
                values = status.get(tier) or {}
                labels = (nm["metadata"]["name"], tier)
                if (c := _number_or_none(values.get("cpu_millis"))) is not None:
                    use_cpu.add_metric(labels, c / 1000)
                if (m := _number_or_none(values.get("memory_bytes"))) is not None:
                    use_mem.add_metric(labels, m)
        errors = GaugeMetricFamily(
            "sigma_predictivescaler_forecast_error_ratio",
            "Forecast error of a PredictiveScaler (symmetric MAPE over its recent window, 0 = perfect).",
            labels=("namespace", "name"))
        for ps in self.registry.list(resource("predictivescalers"))["items"]:
            err = _number_or_none((ps.get("status") or {}).get("forecastError"))
            if err is not None:
                errors.add_metric((ps["metadata"]["namespace"], ps["metadata"]["name"]), err)
        yield from (cpu, mem, use_cpu, use_mem, errors)


def metrics_endpoint(registry: Any, metrics: MasterMetrics | None = None) -> Callable[[Request], Any]:
    """The `GET /metrics` handler; the cluster collector is attached once per registry."""
    target = metrics or METRICS
    target.read_cluster_from(ClusterCollector(registry))
    lock = threading.Lock()  # scrapes read the store: one at a time is plenty

    async def endpoint(_request: Request) -> Response:
        with lock:
            body = target.render()
        return Response(body, media_type=CONTENT_TYPE)

    return endpoint
