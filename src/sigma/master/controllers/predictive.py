"""The PredictiveScaler controller: scales Deployments ahead of forecast load and asks
Level-0 to reserve the predicted prod CPU before the rush.

Every `period_s` it looks at each PredictiveScaler; one whose stepSeconds have passed since
its last step gets one step:

1. read the target Deployment, its live pods, and the metric (sum of the pods' CPU from
   NodeMetric, or their Prometheus endpoints); the sample joins the open history slot;
2. refit the forecaster when the model is missing, older than `refit_s`, or the spec
   changed (the model is a cache: it is rebuilt from status.history after a restart);
3. `sigma.predict.scaler.plan`: replicas = max(forecast, HPA) with scale-down stabilisation,
   and the predicted prod CPU peak within the lead window; the Deployment's spec.replicas
   is patched when it differs;
4. the extra CPU is spread over nodes (sigma.colocation.prereserve) and written with
   the rest of the status; Level-0 reads status.reservation on its next pass.

Status written (merge patch on the status subresource):
    forecast, forecastUpper, actual: [[unix seconds, value], ...]   (next / last 6 h)
    currentMetric, forecastNow: the metric now and what the forecast said for now
    forecastError: MAPE over the last day of forecasts made leadSeconds ahead
    desiredReplicas, currentReplicas, readyReplicas, reason, source, lastScaleTime,
    lastStepTime, nextPeak {time, value}, reservation {...}, stabilization {...},
    history {metric, forecasts}: compact rings (sigma.predict.ring), written when a slot closes.
Nothing else is kept that a restart could not rebuild from those fields.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from sigma.api.errors import ApiError
from sigma.api.objects import is_pod_ready, now_rfc3339
from sigma.api.selectors import selector_to_string
from sigma.client.base import ApiClient
from sigma.colocation.prereserve import TargetOnNode, reservation_nodes, spread
from sigma.master.controllers.periodic import run_periodic
from sigma.master.controllers.predictive_metrics import (
    MetricSource,
    PodUsage,
    PrometheusSource,
    cpu_metric,
    pod_usage,
)
from sigma.master.controllers.predictive_state import ScalerMemory, rebuild, status_series
from sigma.master.guard import guarded
from sigma.master.scheduler.convert import pod_requests
from sigma.predict.errors import mape
from sigma.predict.scaler import Observation, Plan, forecast_at, plan
from sigma.predict.scalerspec import ScalerSpec, ended_events_note, parse_scaler_spec
from sigma.predict.types import Forecast
from sigma.quantity import QuantityError, cpu_millis

log = logging.getLogger("sigma.predictive")

COMPONENT = "predictive-controller"
PERIOD_S = 5.0  # how often due scalers are looked for; each still steps every stepSeconds
REFIT_S = 3600.0  # on the scaled clock: the model changes slowly; a fit costs ~50 ms on two weeks
DAY = 86400.0
MIN_WAIT_S = 0.1  # a scaler on a compressed clock may be due every few hundred ms, not faster


class PredictiveController:
    name = "predictive"

    def __init__(self, client: ApiClient, clock: Callable[[], float] = time.time, period_s: float = PERIOD_S,
                 refit_s: float = REFIT_S, metric_source: MetricSource | None = None,
                 default_step_s: float | None = None) -> None:
        self.client = client
        self.clock = clock
        self.period_s = period_s
        self.refit_s = refit_s
        self.metric_source = metric_source  # None: by the spec's metric type
        self.default_step_s = default_step_s  # for scalers whose spec leaves stepSeconds out
        self._memory: dict[str, ScalerMemory] = {}  # per scaler uid; a cache of status
        self._next_due = 0.0  # wall time the next scaler is due: a compressed clock steps often

    def run(self, stop: threading.Event) -> None:
        run_periodic(stop, self.reconcile, self._wait_s, "predictive pass", log)

    def _wait_s(self) -> float:
        """Until the next pass: the period, or sooner when a scaler on a compressed clock is due."""
        return min(self.period_s, max(MIN_WAIT_S, self._next_due - self.clock()))

    def reconcile(self) -> list[str]:
        """Step every due scaler; returns the names stepped (for tests and logs)."""
        now = self.clock()
        self._next_due = now + self.period_s
        scalers = self.client.list("predictivescalers")["items"]
        self._memory = {uid: m for uid, m in self._memory.items()
                        if uid in {s["metadata"]["uid"] for s in scalers}}
        usage: list[dict[Any, PodUsage]] = []  # read at most once per pass, only when a scaler is due
        stepped = []
        for scaler in scalers:
            # A scaler that fails is reported on (an Event) and the others still step.
            if guarded(self.client, {"kind": "PredictiveScaler", "apiVersion": "sigma.io/v1", **scaler}, COMPONENT,
                       "FailedStep", partial(self._reconcile_one, scaler, now, usage), "stepping"):
                stepped.append(scaler["metadata"]["name"])
        return stepped

    def _reconcile_one(self, scaler: dict[str, Any], now: float, usage: list[dict[Any, PodUsage]]) -> bool:
        """Step one scaler if it is due; True if it stepped."""
        spec, errors = parse_scaler_spec(scaler.get("spec"))
        if spec is None:  # validated on write; only an object stored before validation
            raise ValueError(f"invalid spec: {errors[0].message}")
        if self.default_step_s and "stepSeconds" not in scaler["spec"]:
            spec = dataclasses.replace(spec, step_s=self.default_step_s)
        memory = self._remember(scaler, spec)
        scaled = now * spec.time_scale
        if scaled < memory.last_step + spec.step_s - 1e-6:
            self._next_due = min(self._next_due, (memory.last_step + spec.step_s) / spec.time_scale)
            return False
        if not usage:
            usage.append(pod_usage(self.client.list("nodemetrics")["items"], now))
        try:
            self._step(scaler, spec, memory, now, usage[0])
        except ApiError as err:
            log.warning("predictivescaler %s: %s", scaler["metadata"]["name"], err)
        finally:
            # Even a failed step waits its period: a scaler that fails is not retried hot.
            memory.last_step = scaled
            self._next_due = min(self._next_due, now + spec.step_s / spec.time_scale)
        return True

    def _remember(self, scaler: dict[str, Any], spec: ScalerSpec) -> ScalerMemory:
        uid, generation = scaler["metadata"]["uid"], scaler["metadata"].get("generation", 0)
        memory = self._memory.get(uid)
        if memory is None or memory.generation != generation:
            memory = rebuild(scaler, spec, generation)
            if spec.metric.type == "prometheus":
                memory.source = PrometheusSource()
            self._memory[uid] = memory
        return memory

    def _step(self, scaler: dict[str, Any], spec: ScalerSpec, memory: ScalerMemory, now: float,
              usage: dict[Any, PodUsage]) -> None:
        meta = scaler["metadata"]
        ns = meta.get("namespace") or "default"
        try:
            deployment = self.client.get("deployments", spec.target, ns)
        except ApiError as err:
            if err.code != 404:
                raise
            self._write_status(scaler, {"reason": f"target Deployment {ns}/{spec.target} not found",
                                        "lastStepTime": now})
            return
        pods = self._live_pods(deployment, ns)
        source = self.metric_source or memory.source or cpu_metric
        metric = source(spec, pods, usage, now)  # rates are per wall second, as the pods count
        # The pure core runs on the scaled clock (spec.timeScale), where the load's days are days.
        scaled = now * spec.time_scale
        flushed = memory.add_sample(scaled, metric)
        if (memory.model is None and (flushed or memory.fitted_at < 0)) or scaled - memory.fitted_at >= self.refit_s:
            memory.refit(spec, scaled)  # without a model yet, try again as each slot closes
        replicas = int((deployment.get("spec") or {}).get("replicas") or 0)
        ready = sum(1 for p in pods if is_pod_ready(p))
        template = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        result = plan(spec, memory.model, Observation(scaled, metric, replicas, ready), memory.state,
                      self._cpu_per_replica(spec, pods, usage, metric, template))
        memory.state = result.state
        memory.record_forecast(spec, result.forecast, scaled)
        status: dict[str, Any] = {"desiredReplicas": result.decision.replicas, "currentReplicas": len(pods),
                                  "currentMetric": None if metric is None else round(metric, 4),
                                  "forecastNow": _forecast_now(result.forecast, scaled),
                                  "readyReplicas": ready, "reason": result.decision.reason,
                                  "source": result.decision.source, "lastStepTime": now,
                                  "calendarNote": ended_events_note(spec, scaled),
                                  "stabilization": memory.encode_state()}
        if result.decision.replicas != replicas:
            self.client.patch("deployments", spec.target, {"spec": {"replicas": result.decision.replicas}}, ns)
            status["lastScaleTime"] = now_rfc3339(now)
            log.info("predictivescaler %s/%s: %s -> %s replicas: %s", ns, meta["name"], replicas,
                     result.decision.replicas, result.decision.reason)
        status.update(self._series(spec, memory, result, scaled))
        status["reservation"] = self._reservation(spec, result, pods, usage, template, now)
        if flushed:
            status["history"] = memory.encode_history()
        self._write_status(scaler, status)

    def _live_pods(self, deployment: dict[str, Any], ns: str) -> list[dict[str, Any]]:
        selector = ((deployment.get("spec") or {}).get("selector")) or {}
        if not selector:
            return []
        pods = self.client.list("pods", ns, label_selector=selector_to_string(selector))["items"]
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")
                and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]

    def _cpu_per_replica(self, spec: ScalerSpec, pods: list[dict[str, Any]], usage: dict[Any, PodUsage],
                         metric: float | None, template: dict[str, Any]) -> float | None:
        """Milli-cores one replica uses at targetPerReplica: for an application metric, the
        measured CPU per unit of metric now; the template's request when that is unknown."""
        if spec.metric.type == "cpu":
            return None
        cpu = cpu_metric(spec, pods, usage, 0.0)
        if cpu and metric and metric > 0:
            return cpu / metric * spec.target_per_replica
        return float(_requests(template).get("cpu", 0))

    def _series(self, spec: ScalerSpec, memory: ScalerMemory, result: Plan, now: float) -> dict[str, Any]:
        """The status's series, `now` on the scaled clock; their times are written as wall times."""
        wall = 1.0 / spec.time_scale
        ts, values = memory.history.between(now - 6 * 3600.0, now)
        out: dict[str, Any] = {"actual": status_series(ts * wall, values)}
        actual_ts, actual = memory.history.between(now - DAY, now)
        predicted_ts, predicted = memory.forecasts.between(now - DAY, now)
        _, a, p = np.intersect1d(actual_ts, predicted_ts, return_indices=True)
        error = mape(actual[a], predicted[p]) if a.size else math.nan
        out["forecastError"] = None if math.isnan(error) else round(error, 4)
        forecast = result.forecast
        if forecast is None:
            out.update(forecast=[], forecastUpper=[], nextPeak=None)
            return out
        upper = forecast.at(spec.quantile)
        out["forecast"] = status_series(forecast.ts * wall, forecast.mean)
        out["forecastUpper"] = status_series(forecast.ts * wall, upper)
        peak = int(np.argmax(upper))
        out["nextPeak"] = {"time": float(forecast.ts[peak]) * wall, "value": round(float(upper[peak]), 4)}
        return out

    def _reservation(self, spec: ScalerSpec, result: Plan, pods: list[dict[str, Any]],
                     usage: dict[Any, PodUsage], template: dict[str, Any], now: float) -> dict[str, Any] | None:
        if result.reservation is None:
            return None
        per_node: dict[str, TargetOnNode] = {}
        memories = []
        for pod in pods:
            node = (pod.get("spec") or {}).get("nodeName")
            if not node:
                continue
            seen = usage.get((pod["metadata"].get("namespace") or "", pod["metadata"]["name"]))
            have = per_node.get(node, TargetOnNode(0, 0, 0))
            per_node[node] = TargetOnNode(have.pods + 1, have.cpu_millis + (seen.cpu_millis if seen else 0), 0)
            if seen:
                memories.append(seen.memory_bytes)
        requests = _requests(template)
        replicas = max(result.decision.replicas, len(pods))
        bound = sum(n.pods for n in per_node.values())
        if replicas > bound:  # new replicas: where would they go?
            per_node = self._with_room(per_node)
        memory_per_pod = int(np.mean(memories)) if memories else int(requests.get("memory", 0))
        extra, unplaced = spread(result.reservation.cpu, replicas, per_node, int(requests.get("cpu", 0)),
                                 memory_per_pod)
        total_cpu = sum(r.cpu_millis for r in extra.values())
        reason = f"{result.reservation.reason}; +{total_cpu}m prod cpu over {len(extra)} node(s)"
        if unplaced:
            reason += f"; {unplaced} new replica(s) fit on no node, nothing reserved for them"
        return {"cpuMillis": total_cpu, "memoryBytes": sum(r.memory_bytes for r in extra.values()),
                "peakTime": result.reservation.peak_ts / spec.time_scale, "reason": reason,
                "nodes": reservation_nodes(extra),
                # A lease: renewed every step, lapses if this controller stops renewing it.
                "until": now + 3 * spec.step_s / spec.time_scale}

    def _with_room(self, per_node: dict[str, TargetOnNode]) -> dict[str, TargetOnNode]:
        requested: dict[str, int] = {}
        for pod in self.client.list("pods")["items"]:
            spec = pod.get("spec") or {}
            if spec.get("nodeName") and spec.get("schedulerName") != "fuxi-scheduler" and (
                    pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                requested[spec["nodeName"]] = requested.get(spec["nodeName"], 0) + _requests(spec).get("cpu", 0)
        out = dict(per_node)
        for node in self.client.list("nodes")["items"]:
            name = node["metadata"]["name"]
            if (node.get("spec") or {}).get("unschedulable"):
                continue
            try:
                alloc = cpu_millis(((node.get("status") or {}).get("allocatable") or {}).get("cpu", 0))
            except QuantityError:
                continue
            have = out.get(name, TargetOnNode(0, 0, 0))
            out[name] = TargetOnNode(have.pods, have.cpu_millis, max(alloc - requested.get(name, 0), 0))
        return out

    def _write_status(self, scaler: dict[str, Any], status: dict[str, Any]) -> None:
        meta = scaler["metadata"]
        try:
            self.client.patch("predictivescalers", meta["name"], {"status": status}, meta.get("namespace"),
                              subresource="status")
        except ApiError as err:
            if err.code != 404:  # deleted meanwhile: nothing to report to
                raise


def _forecast_now(forecast: Forecast | None, scaled_now: float) -> float | None:
    """The forecast mean for now, next to currentMetric in `kubectl get`: forecast vs actual."""
    value = forecast_at(forecast, scaled_now) if forecast is not None else math.nan
    return None if math.isnan(value) else round(value, 4)


def _requests(spec: dict[str, Any]) -> dict[str, int]:
    try:
        return pod_requests(spec)
    except ValueError:
        return {}
