"""The demo workloads `sigma up` starts: a small prod HTTP service (Deployment demo-web), a
BatchJob DAG (demo-dag: 4 map instances, then 1 reduce) that runs for about a minute, a
queue of batch BatchJobs (demo-batch-1, -2, ..., sigma.demo.batchqueue) that keeps batch
work coming, all visible with `kubectl get batchjobs`, and a PredictiveScaler for demo-web
(`kubectl get predictivescalers`). With the pod network, demo-web is behind the Service
demo-web and demo-load sends it real requests along the same day (`kubectl logs`).

The prod service sees a compressed day: one day in DEMO_TIME_SCALE-th of a day (four
minutes), its load a function of wall time (sigma.demo.web.offered_load), and a x3 rush
announced in the scaler's calendar six compressed hours (a minute) after `sigma up`. The
scaler runs on the same compressed clock (spec.timeScale), so its forecast column follows the
day and its replicas rise a compressed half hour (five seconds) before the rush; a
scale-down waits for a compressed hour of lower recommendations (spec.behavior), so the
replicas follow the day without flapping. The rush squeezes batch (Level-0 reserves prod's
CPU ahead of it, the node suppresses the batch tier); a batch instance evicted or preempted
runs again, and each finished batch job is followed by the next."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.client.base import ApiClient
from sigma.demo import web as demo_web
from sigma.demo.podpython import hash_for, workload_python

# A map instance hashes for MAP_SECONDS (batch gets only what prod leaves); the reduce runs
# once all four have succeeded.
MAP_SECONDS = 30
MAP = hash_for(MAP_SECONDS, "map: ")
REDUCE = "import time; print('reduce: the 4 map instances succeeded', flush=True); time.sleep(5); print('done')"


def demo_dag() -> dict[str, Any]:
    python, security = workload_python()

    def task(name: str, instances: int, script: str, dependencies: list[str]) -> dict[str, Any]:
        return {"name": name, "instances": instances, "dependencies": dependencies, "template": {"spec": {
            "containers": [{"name": name, "command": [python, "-c", script], "securityContext": security,
                            "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}}]}}}

    return {"apiVersion": "sigma.io/v1", "kind": "BatchJob",
            "metadata": {"name": "demo-dag", "namespace": "default"},
            "spec": {"tasks": [task("map", 4, MAP, []), task("reduce", 1, REDUCE, ["map"])]}}


DEMO_TIME_SCALE = 360.0  # a day in four minutes: an "hour" is ten seconds
DEMO_METRICS_PORT = 19464
DEMO_BASE_RPS = 100.0
DEMO_TARGET_PER_REPLICA = 60.0  # 1-3 replicas over a normal day, 5-8 in the rush
DEMO_SPIKE_AFTER_S = 6 * 3600.0  # compressed seconds from `sigma up` to the rush
DEMO_SPIKE_S = 2 * 3600.0
DEMO_SPIKE_MULTIPLIER = 3.0
DEMO_SCALE_DOWN_WINDOW_S = 3600.0  # compressed seconds


# With the pod network each replica has its own address: fixed ports, a Service in front.
DEMO_WEB_PORT = 8080
DEMO_POD_METRICS_PORT = 9100
DEMO_SERVICE_PORT = 80


def demo_load_env(spike_start: float, time_scale: float = DEMO_TIME_SCALE,
                  port: int = DEMO_METRICS_PORT, host: str = "127.0.0.1") -> list[dict[str, str]]:
    """The env that makes demo-web offer (and serve as a gauge) the compressed day."""
    values = {"LOAD_METRICS_PORT": port, "LOAD_METRICS_HOST": host, "LOAD_TIME_SCALE": time_scale,
              "LOAD_BASE_RPS": DEMO_BASE_RPS, "LOAD_SPIKE_START": spike_start, "LOAD_SPIKE_SECONDS": DEMO_SPIKE_S,
              "LOAD_SPIKE_MULTIPLIER": DEMO_SPIKE_MULTIPLIER}
    return [{"name": k, "value": str(v)} for k, v in values.items()]


def demo_scaler(spike_start: float, time_scale: float = DEMO_TIME_SCALE,
                port: int = DEMO_METRICS_PORT) -> dict[str, Any]:
    """demo-web's PredictiveScaler: the gauge as its metric, the rush in its calendar. Every
    replica serves the whole service's offered load, so the largest reading is the load
    (aggregate max): on the host's network they share one endpoint, on the pod network each
    has its own."""
    start = datetime.fromtimestamp(spike_start, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"apiVersion": "sigma.io/v1", "kind": "PredictiveScaler",
            "metadata": {"name": "demo-web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo-web"},
                     "metric": {"type": "prometheus", "port": port, "path": "/metrics",
                                "name": "demo_offered_requests_per_second", "aggregate": "max"},
                     "targetPerReplica": DEMO_TARGET_PER_REPLICA, "minReplicas": 1, "maxReplicas": 8,
                     "timeScale": time_scale,
                     # Compressed seconds: steps of 5 min (0.8 s), pods Ready 30 min (5 s) ahead.
                     "stepSeconds": 300, "leadSeconds": 1800, "historySeconds": 3 * 86400,
                     # A scale-down only to the highest recommendation of the last compressed hour
                     # (ten seconds): the HPA's stabilisation, as long as a refit of the forecast, so
                     # a p90 hovering at a replica's boundary or a missed scrape does not shed a pod
                     # that the next step adds back. Scale-ups are not held: they lead the rush.
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": DEMO_SCALE_DOWN_WINDOW_S}},
                     "calendar": [{"name": "demo-rush", "start": start, "durationSeconds": DEMO_SPIKE_S,
                                   "multiplier": DEMO_SPIKE_MULTIPLIER}]}}


DEMO_LOAD_FRACTION = 0.1  # demo-load sends a tenth of the offered load as real requests: 5-45 a second


def demo_load(spike_start: float) -> dict[str, Any]:
    """demo-load: real GETs to the Service demo-web following the same compressed day and
    rush (sigma.demo.web with DEMO_ROLE=load); `kubectl logs` shows the replicas answering."""
    python, security = workload_python()
    env = [e for e in demo_load_env(spike_start) if not e["name"].startswith("LOAD_METRICS_")]
    env += [{"name": "DEMO_ROLE", "value": "load"}, {"name": "LOAD_SEND_FRACTION", "value": str(DEMO_LOAD_FRACTION)},
            {"name": "LOAD_TARGET", "value": f"http://demo-web.default.svc.cluster.local:{DEMO_SERVICE_PORT}/"}]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "demo-load", "namespace": "default", "labels": {"app": "demo-load"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "demo-load"}},
                     "template": {"metadata": {"labels": {"app": "demo-load"}}, "spec": {"containers": [{
                         "name": "load", "command": [python, "-c", inspect.getsource(demo_web)],
                         "securityContext": security, "env": env,
                         "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                                       "limits": {"cpu": "500m", "memory": "64Mi"}}}]}}}}


def demo_service() -> dict[str, Any]:
    """demo-web behind a ClusterIP: the node's service proxy spreads requests over the
    ready replicas."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "demo-web", "namespace": "default", "labels": {"app": "demo-web"}},
            "spec": {"selector": {"app": "demo-web"},
                     "ports": [{"name": "http", "port": DEMO_SERVICE_PORT, "targetPort": "http"}]}}


def demo_objects(now: float | None = None, metrics_port: int = DEMO_METRICS_PORT,
                 pod_network: bool = False) -> list[tuple[str, dict[str, Any]]]:
    spike_start = (time.time() if now is None else now) + DEMO_SPIKE_AFTER_S / DEMO_TIME_SCALE
    python, security = workload_python()
    if pod_network:
        metrics_port = DEMO_POD_METRICS_PORT
        listen = [{"name": "HOST", "value": "0.0.0.0"}, {"name": "PORT", "value": str(DEMO_WEB_PORT)}]
        serving: dict[str, Any] = {
            "ports": [{"name": "http", "containerPort": DEMO_WEB_PORT},
                      {"name": "metrics", "containerPort": DEMO_POD_METRICS_PORT}],
            # Traffic only to replicas that answer (the EndpointSlice's ready condition).
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 2}}
    else:
        listen, serving = [{"name": "PORT", "value": "0"}], {}
    web = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "demo-web", "namespace": "default", "labels": {"app": "demo-web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "demo-web"}},
            "template": {
                "metadata": {"labels": {"app": "demo-web", "sigma.io/qos": "LS"}},
                "spec": {
                    "priorityClassName": "sigma-prod",
                    "containers": [{
                        "name": "web",
                        "command": [python, "-c", inspect.getsource(demo_web)],
                        "securityContext": security,
                        "env": [*listen, *demo_load_env(spike_start, port=metrics_port,
                                                         host="0.0.0.0" if pod_network else "127.0.0.1")],
                        "resources": {"requests": {"cpu": "200m", "memory": "64Mi"},
                                      "limits": {"cpu": "1", "memory": "256Mi"}},
                        **serving,
                    }],
                },
            },
        },
    }
    objects = [("deployments", web), ("predictivescalers", demo_scaler(spike_start, port=metrics_port)),
               ("batchjobs", demo_dag())]
    return [*objects, ("services", demo_service()), ("deployments", demo_load(spike_start))] if pod_network \
        else objects


def apply_demo(registry: Registry, port_free: Callable[[int], bool] | None = None, pod_network: bool = False) -> int:
    """Create the demo's objects (those already there, from an earlier start on this state,
    stay as they are) and return demo-web's metrics port.

    With the pod network each replica serves its gauge on its own address and a fixed port.

    That port is shared by every demo-web replica of the cluster (SO_REUSEPORT), so a port
    another cluster's demo on this machine uses would be shared with it too, silently: the
    scaler would read the other cluster's load. So the port is a free one, chosen when the
    demo is created, and chosen again (the Deployment and the scaler updated) when a
    restart finds it taken."""
    from sigma.client.local import LocalClient
    from sigma.ports import default_or_free
    from sigma.ports import port_free as free_on

    is_free = port_free or (lambda port: free_on("127.0.0.1", port))
    client = LocalClient(registry)
    if pod_network:
        for plural, obj in demo_objects(pod_network=True):
            _create(registry, plural, obj)
        return DEMO_POD_METRICS_PORT
    scaler = _get(client, "predictivescalers", "demo-web")
    current = int(((scaler or {}).get("spec") or {}).get("metric", {}).get("port") or 0)
    port = current if current and is_free(current) else default_or_free("127.0.0.1", 0)
    for plural, obj in demo_objects(metrics_port=port):
        _create(registry, plural, obj)
    if scaler is not None and port != current:
        _retarget_metrics_port(client, port)
    return port


def _create(registry: Registry, plural: str, obj: dict[str, Any]) -> None:
    try:
        registry.create(resource(plural), obj["metadata"]["namespace"], obj)
    except ApiError as err:
        if err.reason != "AlreadyExists":
            raise


def demo_service_ip(registry: Registry) -> str | None:
    """demo-web's ClusterIP, once the Service exists."""
    from sigma.client.local import LocalClient

    service = _get(LocalClient(registry), "services", "demo-web")
    return str((service or {}).get("spec", {}).get("clusterIP") or "") or None


def _get(client: ApiClient, plural: str, name: str) -> dict[str, Any] | None:
    try:
        return client.get(plural, name, "default")
    except ApiError as err:
        if err.code == 404:
            return None
        raise


def _retarget_metrics_port(client: ApiClient, port: int) -> None:
    """Point demo-web's load gauge and its scaler at ``port``."""
    scaler = _get(client, "predictivescalers", "demo-web")
    if scaler is not None:
        scaler["spec"]["metric"]["port"] = port
        client.update("predictivescalers", scaler, "default")
    web = _get(client, "deployments", "demo-web")
    if web is not None:
        for container in web["spec"]["template"]["spec"].get("containers") or []:
            for env in container.get("env") or []:
                if env.get("name") == "LOAD_METRICS_PORT":
                    env["value"] = str(port)
        client.update("deployments", web, "default")
