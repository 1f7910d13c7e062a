"""The `sigma up` demo's PredictiveScaler in a real `sigma master`, on a compressed clock (an
"hour" is three seconds): the demo's load server offers a compressed day with a calendar
rush; the test plays the node (it marks the scheduled pods Ready at 127.0.0.1, where the load
server listens), and the Deployment's replicas must rise before the rush, not after it."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sigma.client.http import HttpClient
from sigma.demo.cluster import (
    DEMO_BASE_RPS,
    DEMO_SPIKE_MULTIPLIER,
    DEMO_TARGET_PER_REPLICA,
    demo_load_env,
    demo_objects,
    demo_scaler,
)
from sigma.demo.web import offered_load
from tests.harness import MasterProcess, free_port

pytestmark = pytest.mark.e2e

SCALE = 1200.0  # an "hour" in 3 s, a day in 72 s
SPIKE_AFTER_S = 24.0  # eight compressed hours of history before the rush


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProcess]:
    proc = MasterProcess(tmp_path, extra_args=("--option", "node_grace_s=600")).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def load_server(tmp_path: Path) -> Iterator[tuple[int, float]]:
    """demo-web with the demo's load env, as a pod would run it; (metrics port, rush start)."""
    port, spike = free_port(), rush_start(time.time() + SPIKE_AFTER_S)
    env = {**os.environ, "PORT": "0", **{e["name"]: e["value"] for e in demo_load_env(spike, SCALE, port)}}
    proc = subprocess.Popen([sys.executable, "-m", "sigma.demo.web"], env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield port, spike
    finally:
        proc.terminate()
        proc.wait(10)


def replicas_for_rush(spike: float) -> int:
    return math.ceil(offered_load(spike, SCALE, DEMO_BASE_RPS, spike, 3600.0, DEMO_SPIKE_MULTIPLIER)
                     / DEMO_TARGET_PER_REPLICA)


def rush_start(earliest: float) -> float:
    """The first time from `earliest` (in 0.25 s steps) at which the rush needs more replicas
    than the busiest hour of a normal day. The load's day follows the wall clock, so the rush
    can land anywhere in it; near the trough, x3 is no more than a normal afternoon, the
    replicas would rightly be as high hours before, and "rose for the rush, not all along"
    could not be told apart."""
    day = 86400.0 / SCALE
    normal = max(math.ceil(offered_load(earliest + day * i / 720, SCALE, DEMO_BASE_RPS, 0.0, 0.0, 1.0)
                           / DEMO_TARGET_PER_REPLICA) for i in range(720))
    spike = earliest
    while replicas_for_rush(spike) <= normal:
        spike += 0.25
    return spike


def play_node(client: HttpClient) -> None:
    """What the agent would report: scheduled pods are Running and Ready on the node's IP."""
    for pod in client.list("pods", "default", label_selector="app=demo-web")["items"]:
        if pod["spec"].get("nodeName") and (pod.get("status") or {}).get("phase") != "Running":
            client.patch("pods", pod["metadata"]["name"], {"status": {
                "phase": "Running", "podIP": "127.0.0.1", "hostIP": "127.0.0.1",
                "conditions": [{"type": "Ready", "status": "True"}]}}, "default", subresource="status")


def add_node(client: HttpClient) -> None:
    client.create("nodes", {"metadata": {"name": "n1"}})
    client.patch("nodes", "n1", {"status": {
        "capacity": {"cpu": "32", "memory": "64Gi", "pods": "110"},
        "allocatable": {"cpu": "32", "memory": "64Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True"}]}}, subresource="status")


def test_the_demo_scaler_raises_replicas_before_the_calendar_rush(
        master: MasterProcess, load_server: tuple[int, float]) -> None:
    port, spike = load_server
    client = HttpClient(master.url)
    add_node(client)
    web = dict(demo_objects())["deployments"]
    client.create("deployments", web, "default")
    client.create("predictivescalers", demo_scaler(spike, SCALE, port), "default")
    trace: list[tuple[float, int]] = []
    status: dict[str, Any] = {}
    while time.time() < spike + 3.0:
        play_node(client)
        trace.append((time.time(), int(client.get("deployments", "demo-web", "default")["spec"]["replicas"])))
        status = client.get("predictivescalers", "demo-web", "default").get("status") or {}
        time.sleep(0.2)
    needed = replicas_for_rush(spike)
    before = [r for t, r in trace if spike - 1.0 <= t < spike]
    earlier = [r for t, r in trace if t < spike - 9.0]  # three compressed hours ahead
    assert before and max(before) >= needed, (needed, trace[-40:], status.get("reason"))
    assert max(earlier) < needed, trace  # it rose for the rush, not all along
    assert "demo-rush" in status["reason"] or "forecast" in status["reason"]
    assert status["currentMetric"] > 0 and status["forecastNow"] > 0
    table = client.get_table("predictivescalers", "default")
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert {"Actual", "Forecast", "Replicas"} <= set(columns)
