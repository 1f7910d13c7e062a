"""Prometheus metrics of the master: a small registry, the master's metric families, and
`GET /metrics` in the text exposition format 0.0.4.

Two kinds of values:
- recorded as things happen, through the hooks below (API requests by the middleware; the
  schedulers' attempts, queue length and preemptions; evictions), kept in this process;
- computed at scrape time from the store (per-node batch allocatable published by Level-0,
  prod and batch usage from NodeMetrics, forecast error from PredictiveScalers), so they
  are never stale and need no controller of their own.

Names follow Prometheus conventions: base units (seconds, bytes, cores), `_total` on
counters, a `sigma_` prefix. The hooks are module functions on one process-wide registry
(`METRICS`) so any component in the master calls them without plumbing; tests build their
own `MetricsRegistry`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The client libraries' default buckets: 5 ms to 10 s suits both API calls and scheduling.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LabelValues = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value)) if value != int(value) else str(int(value))


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


class Family:
    """One metric name with its HELP, TYPE and label names; children keyed by label values."""

    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.label_names = name, help_text, tuple(labels)
        self._lock = threading.Lock()
        self._values: dict[LabelValues, Any] = {}

    def _key(self, labels: dict[str, str]) -> LabelValues:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {sorted(labels)}")
        return tuple(str(labels[n]) for n in self.label_names)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}",
                f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in items]

    def render(self) -> list[str]:
        return [*self.header(), *self.samples()]


class Counter(Family):
    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return float(self._values.get(self._key(labels), 0.0))


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def replace(self, values: Iterable[tuple[dict[str, str], float]]) -> None:
        """All children at once: for gauges computed at scrape time (gone nodes disappear)."""
        fresh = {self._key(labels): float(v) for labels, v in values}
        with self._lock:
            self._values = fresh


class Histogram(Family):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (),
                 buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help_text, labels)
        self.buckets = tuple(sorted(buckets))

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            # [cumulative count per bucket..., count, sum]: +Inf is the count itself.
            series = self._values.setdefault(key, [0] * (len(self.buckets) + 1) + [0.0])
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    series[i] += 1
            series[-2] += 1
            series[-1] += value

    def count(self, **labels: str) -> int:
        series = self._values.get(self._key(labels))
        return 0 if series is None else int(series[-2])

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._values.items())
        out: list[str] = []
        names = self.label_names
        for key, series in items:
            for bound, count in zip((*self.buckets, math.inf), series[:-1], strict=True):
                le = 'le="' + _number(bound) + '"'
                out.append(f"{self.name}_bucket{_labels(names, key, le)} {count}")
            out.append(f"{self.name}_sum{_labels(names, key)} {_number(series[-1])}")
            out.append(f"{self.name}_count{_labels(names, key)} {series[-2]}")
        return out


Collector = Callable[[], None]


class MetricsRegistry:
    """The families of one process, rendered in registration order."""

    def __init__(self) -> None:
        self.families: list[Family] = []

    def add(self, family: Family) -> Any:
        self.families.append(family)
        return family

    def render(self) -> str:
        lines = [line for family in self.families for line in family.render()]
        return "\n".join(lines) + "\n"


class MasterMetrics(MetricsRegistry):
    """The master's metric families. Label `scheduler` is sigma-scheduler or fuxi-scheduler."""

    def __init__(self) -> None:
        super().__init__()
        add = self.add
        self.api_requests: Counter = add(Counter(
            "sigma_apiserver_request_total", "API requests by verb, resource and HTTP code.",
            ("verb", "resource", "code")))
        self.api_latency: Histogram = add(Histogram(
            "sigma_apiserver_request_duration_seconds",
            "API request latency by verb and resource (for WATCH: until the stream starts).", ("verb", "resource")))
        self.sched_attempts: Counter = add(Counter(
            "sigma_scheduler_attempts_total",
            "Scheduling attempts by result (scheduled, unschedulable, error).", ("scheduler", "result")))
        self.sched_latency: Histogram = add(Histogram(
            "sigma_scheduler_attempt_duration_seconds", "Time of one scheduling attempt, by result.",
            ("scheduler", "result")))
        self.pending: Gauge = add(Gauge(
            "sigma_scheduler_pending_pods", "Pods waiting in a scheduler's queue.", ("scheduler",)))
        self.preemptions: Counter = add(Counter(
            "sigma_scheduler_preemptions_total", "Preemptions decided (one per preemptor placed).", ("scheduler",)))
        self.victims: Counter = add(Counter(
            "sigma_scheduler_preemption_victims_total", "Pods evicted to make room for a preemptor.",
            ("scheduler",)))
        self.evictions: Counter = add(Counter(
            "sigma_pod_evictions_total", "Pods evicted, by reason and by the component that evicted them.",
            ("reason", "component")))
        self.batch_cpu: Gauge = add(Gauge(
            "sigma_node_batch_allocatable_cpu_cores", "Batch CPU allocatable that Level-0 published, per node.",
            ("node",)))
        self.batch_memory: Gauge = add(Gauge(
            "sigma_node_batch_allocatable_memory_bytes", "Batch memory allocatable that Level-0 published, per node.",
            ("node",)))
        self.usage_cpu: Gauge = add(Gauge(
            "sigma_node_cpu_usage_cores", "CPU in use per node and tier (prod, batch), from the agent's NodeMetric.",
            ("node", "tier")))
        self.usage_memory: Gauge = add(Gauge(
            "sigma_node_memory_usage_bytes", "Memory in use per node and tier (prod, batch), from NodeMetric.",
            ("node", "tier")))
        self.forecast_error: Gauge = add(Gauge(
            "sigma_predictivescaler_forecast_error_ratio",
            "Forecast error of a PredictiveScaler (symmetric MAPE over its recent window, 0 = perfect).",
            ("namespace", "name")))


METRICS = MasterMetrics()


# -- hooks for the master's components -----------------------------------------------------
def record_scheduling_attempt(scheduler: str, result: str, seconds: float) -> None:
    """result: "scheduled", "unschedulable" or "error" (kube-scheduler's three outcomes)."""
    METRICS.sched_attempts.inc(scheduler=scheduler, result=result)
    METRICS.sched_latency.observe(seconds, scheduler=scheduler, result=result)


def set_pending_pods(scheduler: str, count: int) -> None:
    METRICS.pending.set(count, scheduler=scheduler)


def record_preemption(scheduler: str, victims: int) -> None:
    METRICS.preemptions.inc(scheduler=scheduler)
    METRICS.victims.inc(victims, scheduler=scheduler)


def record_eviction(reason: str, component: str) -> None:
    METRICS.evictions.inc(reason=reason, component=component)


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
                self.metrics.api_latency.observe(time.perf_counter() - started, verb=verb, resource=resource)
                self.metrics.api_requests.inc(verb=verb, resource=resource, code=str(message["status"]))
            await send(message)

        await self.app(scope, receive, timed_send)


# -- computed at scrape time from the store ------------------------------------------------
def _number_or_none(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def cluster_collector(registry: Any, metrics: MasterMetrics) -> Collector:
    """Fills the per-node and per-scaler gauges from the API registry at each scrape."""
    from sigma.api.resources import resource
    from sigma.quantity import QuantityError, memory_bytes

    def collect() -> None:
        cpu, mem = [], []
        for node in registry.list(resource("nodes"))["items"]:
            name, alloc = node["metadata"]["name"], (node.get("status") or {}).get("allocatable") or {}
            try:
                # sigma.io/batch-cpu is counted in milli-cores; both are plain integers.
                if "sigma.io/batch-cpu" in alloc:
                    cpu.append(({"node": name}, memory_bytes(alloc["sigma.io/batch-cpu"]) / 1000))
                if "sigma.io/batch-memory" in alloc:
                    mem.append(({"node": name}, float(memory_bytes(alloc["sigma.io/batch-memory"]))))
            except QuantityError:
                continue
        metrics.batch_cpu.replace(cpu)
        metrics.batch_memory.replace(mem)
        use_cpu, use_mem = [], []
        for nm in registry.list(resource("nodemetrics"))["items"]:
            status = nm.get("status") or {}
            for tier in ("prod", "batch"):
                values = status.get(tier) or {}
                labels = {"node": nm["metadata"]["name"], "tier": tier}
                if (c := _number_or_none(values.get("cpu_millis"))) is not None:
                    use_cpu.append((labels, c / 1000))
                if (m := _number_or_none(values.get("memory_bytes"))) is not None:
                    use_mem.append((labels, m))
        metrics.usage_cpu.replace(use_cpu)
        metrics.usage_memory.replace(use_mem)
        errors = []
        for ps in registry.list(resource("predictivescalers"))["items"]:
            err = _number_or_none((ps.get("status") or {}).get("forecastError"))
            if err is not None:
                errors.append(({"namespace": ps["metadata"]["namespace"], "name": ps["metadata"]["name"]}, err))
        metrics.forecast_error.replace(errors)

    return collect


def metrics_endpoint(registry: Any, metrics: MasterMetrics | None = None) -> Callable[[Request], Any]:
    """The `GET /metrics` handler; the cluster collector is attached once per registry."""
    target = metrics or METRICS
    collect = cluster_collector(registry, target)
    lock = threading.Lock()  # two scrapes at once must not interleave their replace() calls

    async def endpoint(_request: Request) -> Response:
        with lock:
            collect()
            body = target.render()
        return Response(body, media_type=CONTENT_TYPE)

    return endpoint
