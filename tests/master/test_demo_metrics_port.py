"""The demo's load gauge port: demo-web's replicas share it (SO_REUSEPORT), so two `sigma up`
on one machine must not both use one fixed port. A free port is chosen when the demo is
created, kept across restarts while free, and moved when a restart finds it taken."""

from __future__ import annotations

from sigma.client.local import LocalClient
from sigma.demo.cluster import apply_demo


def metrics_ports(client: LocalClient) -> tuple[int, str]:
    scaler = client.get("predictivescalers", "demo-web", "default")
    web = client.get("deployments", "demo-web", "default")
    env = {e["name"]: e["value"] for e in web["spec"]["template"]["spec"]["containers"][0]["env"]}
    return int(scaler["spec"]["metric"]["port"]), env["LOAD_METRICS_PORT"]


def test_the_demo_takes_a_free_port_and_moves_off_a_taken_one(client: LocalClient) -> None:
    registry = client.registry
    first = apply_demo(registry, port_free=lambda port: True)
    assert metrics_ports(client) == (first, str(first))
    assert apply_demo(registry, port_free=lambda port: True) == first  # a restart keeps it while free
    moved = apply_demo(registry, port_free=lambda port: port != first)  # another cluster took it
    assert moved != first
    assert metrics_ports(client) == (moved, str(moved))
