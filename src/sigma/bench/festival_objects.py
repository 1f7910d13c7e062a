"""The API objects `sigma bench festival` creates in each mode's namespace. Pure: each
function returns a dict to POST.

- web (Deployment + Service): replicas of sigma.bench.festival_backend, a readiness probe
  so only Ready replicas get traffic, a CPU request sized to the per-replica target;
- the PredictiveScaler (predictive mode): the replicas' own request counter as its metric,
  the rush in its calendar, timeScale compressing the day; plus, as a bad input the run
  must survive, an event a year in the past;
- the HorizontalPodAutoscaler (reactive mode): autoscaling/v2 on CPU utilisation;
- the cluster-default NodeSLO: CPU Burst for prod's replicas;
- the BatchJob queue: one task of many instances that each hash for a while, enough
  to fill every idle core for the whole run.
"""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sigma.bench.festival_model import Curve, needed_replicas
from sigma.colocation.cpuburst import CPU_BURST_ONLY
from sigma.colocation.slo import CLUSTER_DEFAULT

BACKEND_SOURCE = Path(__file__).with_name("festival_backend.py")
WEB = "web"
SCALER_STEP_S = 300.0  # compressed seconds: the forecaster's own grain
YEAR_S = 365 * 86400.0
# A batch instance: hash for BATCH_SECONDS of wall time, then succeed. SIGTERM ends it at once.
BATCH_SECONDS = 15
BATCH = f"""\
import hashlib, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
h, end = b"batch", time.time() + {BATCH_SECONDS}
while time.time() < end:
    for _ in range(2000):
        h = hashlib.sha256(h).digest()
"""


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def service() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": WEB},
            "spec": {"type": "NodePort",  # the customer comes from outside the cluster
                     "selector": {"app": WEB}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def deployment(replicas: int, cost_ms: float, cpu_request_m: int, cpu_limit_m: int) -> dict[str, Any]:
    """A replica's CPU limit is its capacity (limit / cost requests/s): past it a queue
    forms, so the load needs replicas without the rush burning the whole machine."""
    container = {"name": WEB, "command": ["python3", "-u", "-c", BACKEND_SOURCE.read_text(), f"{cost_ms:g}"],
                 "ports": [{"name": "http", "containerPort": 8080}],
                 "resources": {"requests": {"cpu": f"{cpu_request_m}m", "memory": "32Mi"},
                               "limits": {"cpu": f"{cpu_limit_m}m", "memory": "64Mi"}},
                 "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1,
                                    "failureThreshold": 1, "successThreshold": 1}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": WEB},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": WEB}},
                     "template": {"metadata": {"labels": {"app": WEB}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [container]}}}}


def scaler(curve: Curve, start_wall: float, per_replica: float, max_replicas: int, lead_wall_s: float,
           stabilise_wall_s: float) -> dict[str, Any]:
    """The PredictiveScaler; `start_wall` is the Unix time of the load's t = 0."""
    scale = curve.time_scale
    rush = {"name": "festival", "start": rfc3339(start_wall + curve.rush_at_s),
            "durationSeconds": round(curve.rush_s * scale), "multiplier": curve.multiplier}
    past = {"name": "last-year", "start": rfc3339(start_wall + curve.rush_at_s - YEAR_S / scale),
            "durationSeconds": round(curve.rush_s * scale), "multiplier": curve.multiplier}
    return {"apiVersion": "sigma.io/v1", "kind": "PredictiveScaler", "metadata": {"name": WEB},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": WEB},
                     "metric": {"type": "prometheus", "port": 8080, "path": "/metrics",
                                "name": "festival_requests_total", "rate": True, "aggregate": "sum"},
                     "targetPerReplica": per_replica, "minReplicas": 1, "maxReplicas": max_replicas,
                     "timeScale": scale, "stepSeconds": SCALER_STEP_S, "quantile": 0.9,
                     "leadSeconds": round(lead_wall_s * scale), "historySeconds": 3 * 86400,
                     "reactive": {"enabled": True, "tolerance": 0.1,
                                  "scaleDownStabilizationSeconds": min(3600, round(stabilise_wall_s * scale))},
                     "calendar": [past, rush]}}


def seeded_history(curve: Curve, start_wall: float, days: float, seed: int) -> dict[str, Any]:
    """status.history.metric as the controller writes it (sigma.predict.ring): the days
    before the run, the curve without its rush, with 5% noise. A scaler that has watched
    the service for days is what the festival needs; a bench cannot wait three days."""
    scale = curve.time_scale
    now = start_wall * scale
    first = math.floor((now - days * 86400.0) / SCALER_STEP_S) * SCALER_STEP_S
    n = int((now - first) // SCALER_STEP_S)
    rng = np.random.default_rng(seed)
    values = []
    for i in range(n):
        t = (first + (i + 0.5) * SCALER_STEP_S) / scale - start_wall  # wall offset from the run's start
        hour_only = Curve(curve.base_rps, scale, curve.start_hour, math.inf, 0.0, 1.0)
        values.append(hour_only.rate(t) * float(rng.normal(1.0, 0.05)))
    raw = np.asarray(values, dtype="<f4").tobytes()
    return {"metric": {"start": first, "stepSeconds": SCALER_STEP_S, "values": base64.b64encode(raw).decode()}}


def hpa(per_replica_m: int, cpu_request_m: int, max_replicas: int, stabilise_wall_s: float) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": WEB},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": WEB},
                     "minReplicas": 1, "maxReplicas": max_replicas,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": round(100 * per_replica_m / cpu_request_m)}}}],
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": round(stabilise_wall_s)}}}}


def node_slo(suppress_policy: str) -> dict[str, Any]:
    """The cluster-default NodeSLO: CPU Burst for prod (sigma.colocation.cpuburst), the
    suppress policy asked for, the rest at its defaults."""
    return {"apiVersion": "sigma.io/v1", "kind": "NodeSLO", "metadata": {"name": CLUSTER_DEFAULT},
            "spec": {"cpuBurstStrategy": {"policy": CPU_BURST_ONLY}, "cpuSuppressPolicy": suppress_policy}}


def batch_job(instances: int, in_flight: int, cpu_m: int) -> dict[str, Any]:
    return {"apiVersion": "sigma.io/v1", "kind": "BatchJob", "metadata": {"name": "crunch"},
            "spec": {"maxInFlight": in_flight, "tasks": [{
                "name": "hash", "instances": instances, "retryLimit": 3, "dependencies": [],
                "template": {"spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                    "name": "hash", "command": ["python3", "-c", BATCH],
                    "resources": {"requests": {"cpu": f"{cpu_m}m", "memory": "32Mi"}}}]}}}]}}


def static_replicas(curve: Curve, duration_s: float, per_replica: float) -> int:
    return needed_replicas(curve.peak(duration_s), per_replica)
