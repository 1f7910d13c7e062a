"""The NodeMetric report's per-container usage and CPU-rate window, which metrics.k8s.io
serves (PodMetrics containers, `window`)."""

from __future__ import annotations

from sigma.agent.nodemetric import NodeMetricBuilder
from sigma.agent.usage_metrics import PodUsage, Usage


def test_each_pod_lists_its_containers_and_the_report_its_rate_window() -> None:
    builder = NodeMetricBuilder("n1", 4000, 8 * 2**30, window_seconds=60)
    web = PodUsage("default", "web", "u1", "LS", Usage(0.3, 3000),
                   (("main", Usage(0.25, 2000)), ("sidecar", Usage(0.05, 1000))))
    first = builder.build(100.0, Usage(1.0, 10_000), [web])["status"]
    assert "sample_window_s" not in first  # no previous report: no rate window yet
    status = builder.build(102.5, Usage(1.0, 10_000), [web, PodUsage("default", "old", "u2", "LS", Usage(0.1, 1))])
    assert status["status"]["sample_window_s"] == 2.5
    pods = {p["name"]: p for p in status["status"]["pods"]}
    assert pods["web"]["containers"] == [{"name": "main", "cpu_millis": 250, "memory_bytes": 2000},
                                         {"name": "sidecar", "cpu_millis": 50, "memory_bytes": 1000}]
    assert "containers" not in pods["old"]  # no container cgroups read: pod totals only
