"""Where a PredictiveScaler's metric comes from: NodeMetric pod CPU, or the pods' Prometheus
endpoints. Used by sigma.master.controllers.predictive; tests pass their own source instead.

A source is called once per step with the scaler's spec, the target's live pods and the
pod usage read from NodeMetrics, and returns the target's summed metric (None: unreadable).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from sigma.colocation.slo import metric_timestamp
from sigma.predict.scalerspec import ScalerSpec

log = logging.getLogger("sigma.predictive")

SCRAPE_TIMEOUT_S = 2.0
SCRAPE_WORKERS = 8
STALE_METRIC_S = 120.0  # a NodeMetric older than this says nothing about the pods now

PodKey = tuple[str, str]


@dataclass(frozen=True)
class PodUsage:
    node: str
    cpu_millis: int
    memory_bytes: int


MetricSource = Callable[[ScalerSpec, list[dict[str, Any]], Mapping[PodKey, PodUsage], float], "float | None"]


def pod_usage(nodemetrics: list[dict[str, Any]], now: float) -> dict[PodKey, PodUsage]:
    """Per pod (namespace, name), its usage from the fresh NodeMetrics' `pods` entries."""
    out: dict[PodKey, PodUsage] = {}
    for metric in nodemetrics:
        status = metric.get("status") or {}
        stamp = metric_timestamp(status.get("timestamp"))
        if stamp is None or now - stamp > STALE_METRIC_S:
            continue
        node = metric["metadata"]["name"]
        for pod in status.get("pods") or []:
            if isinstance(pod, Mapping) and pod.get("name"):
                out[(str(pod.get("namespace") or ""), str(pod["name"]))] = PodUsage(
                    node, int(pod.get("cpu_millis") or 0), int(pod.get("memory_bytes") or 0))
    return out


def cpu_metric(spec: ScalerSpec, pods: list[dict[str, Any]], usage: Mapping[PodKey, PodUsage],
               now: float) -> float | None:
    """Summed CPU (milli-cores) of the target's pods that a fresh NodeMetric reports."""
    seen = [usage[k] for k in map(_key, pods) if k in usage]
    return float(sum(u.cpu_millis for u in seen)) if seen else None


def parse_prometheus(text: str, name: str) -> float | None:
    """Sum of every sample named `name` (all label sets) in a Prometheus text exposition, read
    by prometheus-client's parser; None when there is none or the text does not parse."""
    total, found = 0.0, False
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and math.isfinite(sample.value):
                    total, found = total + sample.value, True
    except ValueError:  # a malformed exposition says nothing reliable about the load
        return None
    return total if found else None


class PrometheusSource:
    """Scrapes http://podIP:port/path of each pod once per distinct endpoint; for a counter,
    the per-second rate since the previous scrape of it (a restarted pod's counter restarts
    from 0)."""

    def __init__(self, get: Callable[[str], str] | None = None) -> None:
        self._get = get or _http_get
        self._last: dict[str, tuple[float, float]] = {}  # counter value and time per endpoint

    def __call__(self, spec: ScalerSpec, pods: list[dict[str, Any]], usage: Mapping[PodKey, PodUsage],
                 now: float) -> float | None:
        m = spec.metric
        # Pods on a host network share their node's IP: several pods, one endpoint. Summing
        # it once per pod would count it N times, so each distinct endpoint is scraped once.
        urls = sorted({f"http://{p['status']['podIP']}:{m.port}{m.path}" for p in pods
                       if (p.get("status") or {}).get("podIP")})
        if not urls:
            return None
        with ThreadPoolExecutor(min(SCRAPE_WORKERS, len(urls))) as pool:
            values = dict(zip(urls, pool.map(lambda u: self._scrape(u, m.name), urls), strict=True))
        readings = [(url, v) for url, v in values.items() if v is not None]
        combine = max if m.aggregate == "max" else sum
        if not m.rate:
            return combine(v for _, v in readings) if readings else None
        rates = []
        for key, value in readings:
            previous = self._last.get(key)
            self._last[key] = (value, now)
            if previous is not None and now > previous[1]:
                delta = value - previous[0] if value >= previous[0] else value  # counter reset
                rates.append(delta / (now - previous[1]))
        self._last = {k: v for k, v in self._last.items() if k in values}  # forget pods that left
        return combine(rates) if rates else None

    def _scrape(self, url: str, name: str) -> float | None:
        try:
            return parse_prometheus(self._get(url), name)
        except (httpx.HTTPError, OSError) as err:
            log.debug("scrape %s: %s", url, err)
            return None


def _http_get(url: str) -> str:
    response = httpx.get(url, timeout=SCRAPE_TIMEOUT_S)
    response.raise_for_status()
    return response.text


def _key(pod: Mapping[str, Any]) -> PodKey:
    meta = pod.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")
