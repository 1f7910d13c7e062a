"""The PredictiveScaler controller over a real registry, on a virtual clock: days of a daily
pattern are replayed in seconds, then a calendar rush; the scaler must have the replicas
(and Level-0 the batch capacity drained) before the rush, not after."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest

from sigma.api.errors import ApiError
from sigma.client.local import LocalClient
from sigma.master.controllers.level0 import Level0Controller
from sigma.master.controllers.predictive import PredictiveController
from sigma.master.controllers.predictive_metrics import PrometheusSource, parse_prometheus
from sigma.predict.scalerspec import parse_scaler_spec

DAY, STEP = 86400.0, 300.0
START = 1_764_000_000.0 - 1_764_000_000.0 % DAY  # midnight UTC
RUSH = START + 2 * DAY + 20 * 3600.0  # day 3, 20:00 UTC: the quiet part of the day, x4
RUSH_S, LEAD, TARGET, BASE = 7200.0, 900.0, 500.0, 2000.0


def load(ts: float) -> float:
    """Milli-cores the service needs: a daily swing x0.5..x1.5, x4 during the rush, 3% noise."""
    daily = 1.0 + 0.5 * math.sin(2 * math.pi * (ts % DAY) / DAY)
    rush = 4.0 if RUSH <= ts < RUSH + RUSH_S else 1.0
    noise = 1.0 + 0.03 * math.sin(ts / 977.0)  # deterministic wiggle
    return BASE * daily * rush * noise


SCALER = {
    "apiVersion": "sigma.io/v1", "kind": "PredictiveScaler", "metadata": {"name": "web"},
    "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
             "metric": {"type": "cpu"}, "targetPerReplica": TARGET, "minReplicas": 2, "maxReplicas": 30,
             "leadSeconds": LEAD, "stepSeconds": STEP, "quantile": 0.9,
             "calendar": [{"name": "festival", "start": "2025-11-26T20:00:00Z", "durationSeconds": RUSH_S,
                           "multiplier": 4}],
             "reactive": {"enabled": True, "scaleDownStabilizationSeconds": 900}},
}


class World:
    """Two nodes, the `web` Deployment; pods follow spec.replicas at once (Ready), share the
    load evenly, and the nodes' NodeMetrics report it, as agents would."""

    def __init__(self, client: LocalClient) -> None:
        self.client = client
        self.serial = 0
        for node in ("n1", "n2"):
            client.create("nodes", {"metadata": {"name": node}})
            client.patch("nodes", node, {"status": {
                "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}]}}, subresource="status")
            client.create("nodemetrics", {"metadata": {"name": node}})
        client.create("deployments", {"metadata": {"name": "web"}, "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
                "name": "web", "image": "web:1", "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}}]}}}},
            "default")

    def pods(self) -> list[dict[str, Any]]:
        return self.client.list("pods", "default", label_selector="app=web")["items"]

    def tick(self, now: float) -> None:
        want = self.client.get("deployments", "web", "default")["spec"]["replicas"]
        pods = self.pods()
        for pod in pods[want:]:
            self.client.delete("pods", pod["metadata"]["name"], "default", grace_period_seconds=0)
        for _ in range(want - len(pods)):
            self.serial += 1
            on = [p["spec"]["nodeName"] for p in self.pods()]
            node = min(("n1", "n2"), key=on.count)
            name = f"web-{self.serial}"
            self.client.create("pods", {"metadata": {"name": name, "labels": {"app": "web"}}, "spec": {
                "nodeName": node, "containers": [{"name": "web", "image": "web:1", "resources": {
                    "requests": {"cpu": "500m", "memory": "256Mi"}}}]}}, "default")
            self.client.patch("pods", name, {"status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": [
                {"type": "Ready", "status": "True"}]}}, "default", subresource="status")
        self.report(now)

    def report(self, now: float) -> None:
        pods = self.pods()
        each = load(now) / max(len(pods), 1)
        for node in ("n1", "n2"):
            mine = [p for p in pods if p["spec"]["nodeName"] == node]
            cpu = round(each * len(mine))
            self.client.patch("nodemetrics", node, {"status": {
                "timestamp": now, "window_s": 60,
                "prod": {"cpu_millis": cpu, "memory_bytes": len(mine) * 2**28, "cpu_peak_millis": cpu,
                         "memory_peak_bytes": len(mine) * 2**28},
                "pods": [{"namespace": "default", "name": p["metadata"]["name"], "qos": "LS",
                          "cpu_millis": round(each), "memory_bytes": 2**28} for p in mine]}}, subresource="status")

    def replicas(self) -> int:
        return int(self.client.get("deployments", "web", "default")["spec"]["replicas"])


def replay(client: LocalClient, world: World, ctrl: PredictiveController, clock: list[float], until: float,
           trace: dict[float, int]) -> None:
    while clock[0] < until:
        world.tick(clock[0])
        ctrl.reconcile()
        world.tick(clock[0])  # the Deployment's new replicas exist (and are Ready) within the step
        trace[clock[0]] = world.replicas()
        clock[0] += STEP


@pytest.fixture
def festival(client: LocalClient) -> tuple[World, PredictiveController, list[float], dict[float, int]]:
    """Two days and 19 hours of history replayed: the scaler is just before the rush."""
    world = World(client)
    client.create("predictivescalers", SCALER, "default")
    clock = [START]
    ctrl = PredictiveController(client, clock=lambda: clock[0], refit_s=3 * 3600.0)
    trace: dict[float, int] = {}
    replay(client, world, ctrl, clock, RUSH - 3600.0, trace)
    return world, ctrl, clock, trace


def test_the_calendar_rush_is_given_its_replicas_a_lead_time_ahead_and_released_after(
        client: LocalClient, festival: tuple[World, PredictiveController, list[float], dict[float, int]]) -> None:
    world, ctrl, clock, trace = festival
    replay(client, world, ctrl, clock, RUSH + RUSH_S + 3 * 3600.0, trace)
    at_start = need(RUSH)
    before = max(t for t in trace if t <= RUSH - LEAD)
    assert trace[before] >= at_start, f"{trace[before]} replicas at rush - lead, {at_start} needed"
    assert max(trace[t] for t in trace if t < RUSH - 2 * 3600) < at_start  # not simply scaled up all day
    # During the rush every step has enough; after it, back down, but not at the first quiet step.
    short = {t: (trace[t], need(t)) for t in trace if RUSH <= t < RUSH + RUSH_S and trace[t] < need(t)}
    assert not short
    end = RUSH + RUSH_S
    # The announced end is not held by stabilisation (the forecast knows the rush is over):
    # the first step after it already runs a normal evening's replicas, and enough of them.
    after = trace[min(t for t in trace if t >= end)]
    assert need(end) <= after < at_start
    last = max(trace)
    assert trace[last] <= need(last) + 1 < at_start  # back to a normal evening's replicas


def need(ts: float) -> int:
    """Replicas that carry the load over the step starting at ts."""
    return math.ceil(max(load(t) for t in np.arange(ts, ts + STEP, 30.0)) / TARGET)


def test_the_status_says_what_was_forecast_chosen_and_missed(
        client: LocalClient, festival: tuple[World, PredictiveController, list[float], dict[float, int]]) -> None:
    status = client.get("predictivescalers", "web", "default")["status"]
    assert status["desiredReplicas"] == status["currentReplicas"] == len(client.list("pods", "default")["items"])
    assert len(status["forecast"]) >= 60 and len(status["actual"]) >= 60  # 6 h each way at 5 min
    assert all(isinstance(t, float) and v > 0 for t, v in status["forecast"])
    assert 0 <= status["forecastError"] < 0.15  # a clean daily pattern is forecast well
    assert "p90 forecast" in status["reason"]
    peak = status["nextPeak"]
    assert RUSH - STEP <= peak["time"] < RUSH + RUSH_S and peak["value"] > 3 * load(RUSH - 3600.0)
    assert "history" in status and status["history"]["metric"]["stepSeconds"] == STEP
    assert "lastScaleTime" in status


def test_a_restarted_controller_rebuilds_its_model_from_the_status(
        client: LocalClient, festival: tuple[World, PredictiveController, list[float], dict[float, int]]) -> None:
    world, _, clock, trace = festival
    fresh = PredictiveController(client, clock=lambda: clock[0])
    replay(client, world, fresh, clock, RUSH - LEAD + 1, trace)
    status = client.get("predictivescalers", "web", "default")["status"]
    assert "p90 forecast" in status["reason"], status["reason"]  # not "no forecast yet"
    assert world.replicas() >= 9


def test_level0_drains_batch_capacity_before_the_rush(
        client: LocalClient, festival: tuple[World, PredictiveController, list[float], dict[float, int]]) -> None:
    world, ctrl, clock, trace = festival
    level0 = Level0Controller(client, clock=lambda: clock[0])
    quiet = level0.reconcile()
    replay(client, world, ctrl, clock, RUSH - LEAD + STEP + 1, trace)  # the rush is inside the lead window
    world.report(clock[0])
    ahead = level0.reconcile()
    reservation = client.get("predictivescalers", "web", "default")["status"]["reservation"]
    extra = {n["node"]: n["cpuMillis"] for n in reservation["nodes"]}
    assert set(extra) == {"n1", "n2"} and sum(extra.values()) > 2000
    for node in ("n1", "n2"):
        published = int(client.get("nodes", node)["status"]["allocatable"]["sigma.io/batch-cpu"])
        assert published == ahead[node].cpu_millis
        prod_now = client.get("nodemetrics", node)["status"]["prod"]["cpu_peak_millis"]
        # 32 cores x 0.65 - (prod now + its predicted extra): batch shrank by the extra...
        assert ahead[node].cpu_millis == int(32000 * 0.65) - prod_now - extra[node]
        # ...and well below what it was an hour before, when no rush was in sight.
        assert quiet[node].cpu_millis - ahead[node].cpu_millis > 0.5 * extra[node]
        assert "raised to the predicted prod usage" in ahead[node].reason
    # The reservation is a lease: a controller that stops renewing it stops draining batch.
    clock[0] += 4 * STEP
    world.report(clock[0])
    lapsed = level0.reconcile()
    assert all("predicted" not in lapsed[n].reason for n in ("n1", "n2"))


def test_invalid_specs_are_refused_with_field_paths(client: LocalClient) -> None:
    bad = {**SCALER, "spec": {**SCALER["spec"], "targetPerReplica": 0, "minReplicas": 5, "maxReplicas": 3,
                              "quantile": 0.4, "metric": {"type": "prometheus", "port": 0},
                              "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "x"},
                              "calendar": [{"name": "d11", "start": "11/11", "durationSeconds": 60,
                                            "multiplier": -1}],
                              "reactive": {"tolerance": 2}, "leadSeconds": -60,
                              "timeScale": 0.5}}
    with pytest.raises(ApiError) as err:
        client.create("predictivescalers", bad, "default")
    assert err.value.code == 422
    fields = {c.field for c in err.value.causes}
    assert {"spec.targetPerReplica", "spec.maxReplicas", "spec.quantile", "spec.metric.port", "spec.metric.name",
            "spec.scaleTargetRef.kind", "spec.calendar[0].start", "spec.calendar[0].multiplier",
            "spec.reactive.tolerance", "spec.leadSeconds", "spec.timeScale"} <= fields
    # An unknown field is refused by the kind's schema, before the rules above run.
    with pytest.raises(ApiError) as err:
        client.create("predictivescalers", {**SCALER, "spec": {**SCALER["spec"], "leadSecs": 5}}, "default")
    assert err.value.code == 422 and [c.field for c in err.value.causes] == ["spec.leadSecs"]
    assert not client.list("predictivescalers", "default")["items"]


def test_defaults_fill_what_the_spec_leaves_out() -> None:
    spec, errors = parse_scaler_spec({"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                                      "metric": {"type": "prometheus", "port": 9100, "name": "http_requests_total"},
                                      "targetPerReplica": 100, "maxReplicas": 4})
    assert not errors and spec is not None
    assert (spec.min_replicas, spec.step_s, spec.lead_s, spec.quantile) == (1, 60.0, 300.0, 0.9)
    assert spec.metric.rate and spec.metric.path == "/metrics"  # a _total counter: its rate


def test_a_missing_target_is_reported_not_fatal(client: LocalClient) -> None:
    client.create("predictivescalers", SCALER, "default")
    PredictiveController(client, clock=lambda: START).reconcile()
    assert "not found" in client.get("predictivescalers", "web", "default")["status"]["reason"]


def test_prometheus_counters_become_rates_summed_over_pods() -> None:
    text = ('# TYPE http_requests_total counter\nhttp_requests_total{code="200",path="/a b"} 100\n'
            'http_requests_total{code="500"} 20\nhttp_requests_totalx 7\nup 1\n')
    assert parse_prometheus(text, "http_requests_total") == 120.0
    assert parse_prometheus(text, "missing") is None
    counters = {"10.0.0.1": 120.0, "10.0.0.2": 50.0}
    source = PrometheusSource(get=lambda url: f"http_requests_total {counters[url.split('/')[2].split(':')[0]]}")
    spec, _ = parse_scaler_spec({**SCALER["spec"], "metric": {"type": "prometheus", "port": 8080,
                                                              "name": "http_requests_total"}})
    assert spec is not None
    pods = [{"metadata": {"namespace": "default", "name": f"p{i}"}, "status": {"podIP": ip}}
            for i, ip in enumerate(counters)]
    assert source(spec, pods, {}, 0.0) is None  # a rate needs two scrapes
    counters.update({"10.0.0.1": 180.0, "10.0.0.2": 10.0})  # the second pod restarted
    assert source(spec, pods, {}, 10.0) == pytest.approx(6.0 + 1.0)


def test_a_shared_gauge_is_taken_once_with_aggregate_max() -> None:
    # Each replica, on its own pod IP, reports the whole service's offered load.
    gauges = {"10.0.0.1": 120.0, "10.0.0.2": 118.0, "10.0.0.3": 121.0}
    source = PrometheusSource(get=lambda url: f"offered {gauges[url.split('/')[2].split(':')[0]]}")
    pods = [{"metadata": {"namespace": "default", "name": f"p{i}"}, "status": {"podIP": ip}}
            for i, ip in enumerate(gauges)]
    for aggregate, expected in (("max", 121.0), ("sum", 359.0)):
        spec, errors = parse_scaler_spec({**SCALER["spec"], "metric": {
            "type": "prometheus", "port": 8080, "name": "offered", "aggregate": aggregate}})
        assert spec is not None, errors
        assert source(spec, pods, {}, 0.0) == pytest.approx(expected)
    _, errors = parse_scaler_spec({**SCALER["spec"], "metric": {"type": "prometheus", "port": 8080,
                                                                "name": "offered", "aggregate": "mean"}})
    assert [e.path for e in errors] == ["spec.metric.aggregate"]


def test_a_calendar_event_in_the_past_is_named_in_the_status_and_the_scaler_still_steps(client: LocalClient) -> None:
    world = World(client)
    scaler: dict[str, Any] = copy.deepcopy(SCALER)
    scaler["spec"]["calendar"].insert(0, {"name": "last-year", "start": "2024-11-26T20:00:00Z",
                                          "durationSeconds": RUSH_S, "multiplier": 4})
    client.create("predictivescalers", scaler, "default")
    world.tick(START)
    PredictiveController(client, clock=lambda: START).reconcile()
    status = client.get("predictivescalers", "web", "default")["status"]
    assert '"last-year"' in status["calendarNote"] and '"festival"' not in status["calendarNote"]
    assert status["desiredReplicas"] >= 1 and "not found" not in status["reason"]
