"""The proxy against real nft and real traffic, in network namespaces made for each test."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sigma.agent.svcproxy.proxy import ServiceProxy
from sigma.agent.svcproxy.rules import MAX_SPREAD, NodeConfig

from .objects import endpoint, endpoint_slice, service
from .topology import Node, netns_skip_reason

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.skipif(netns_skip_reason() is not None,
                                                                     reason=str(netns_skip_reason()))]
PORT = [{"name": "http", "port": 80, "targetPort": 8080}]
SLICE_PORT = [{"name": "http", "port": 8080, "protocol": "TCP"}]


class StaticSource:
    """The cache's read side, filled by the test (the seam between proxy and API watch)."""

    def __init__(self) -> None:
        self.synced = threading.Event()
        self.synced.set()
        self.services: list[dict[str, Any]] = []
        self.slices: list[dict[str, Any]] = []

    def subscribe(self) -> threading.Event:
        return threading.Event()

    def snapshot(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return list(self.services), list(self.slices)


@pytest.fixture
def node() -> Iterator[Node]:
    with Node(endpoints=3) as n:
        yield n


def test_the_table_loads_replaces_itself_and_goes_away(node: Node) -> None:
    source = StaticSource()
    source.services = [service("web", "10.96.0.10", PORT, type="NodePort",
                               sessionAffinity="ClientIP")]
    source.services[0]["spec"]["ports"] = [{**PORT[0], "nodePort": 30080}]
    source.slices = [endpoint_slice("web-a", "web", SLICE_PORT, [endpoint(node.ip_of(0))])]
    proxy = ServiceProxy(source, NodeConfig("10.244.0.0/16"), node.nft())
    assert proxy.sync().full
    assert not proxy.sync().full  # nothing changed: nothing written
    proxy = ServiceProxy(source, NodeConfig("10.244.0.0/16"), node.nft())  # an agent restart
    assert proxy.sync().full  # a second full write replaces the table
    listed = node.nft().run("list", "table", "ip", "sigma")
    assert "10.96.0.10 . tcp . 80 : goto svc-default/web/tcp/http" in listed
    assert "tcp . 30080 : goto ext-default/web/tcp/http" in listed
    proxy.remove()
    assert "sigma" not in node.nft().run("list", "tables")


def test_traffic_spreads_follows_readiness_and_is_refused_without_endpoints(node: Node) -> None:
    source = StaticSource()
    source.services = [service("web", "10.96.0.10", PORT), service("empty", "10.96.0.11", PORT),
                       service("self", "10.96.0.12", PORT)]
    source.slices = [endpoint_slice("web-a", "web", SLICE_PORT, [endpoint(node.ip_of(i)) for i in range(3)]),
                     endpoint_slice("self-a", "self", SLICE_PORT, [endpoint(node.ip_of(0))])]
    proxy = ServiceProxy(source, NodeConfig("10.244.0.0/16"), node.nft())
    proxy.sync()

    counts = node.connect_many(node.client, "10.96.0.10", 80, 150)
    assert set(counts) == {"ep0", "ep1", "ep2"}, counts  # every endpoint, no error
    # 50 expected each: a uniform spread keeps the busiest within 2.5x of the quietest
    # except with a probability far below one in a million.
    assert max(counts.values()) <= 2.5 * min(counts.values()), counts

    # An endpoint reaching itself through its own service (hairpin masquerade).
    assert node.connect_many(node.eps[0], "10.96.0.12", 80, 10) == {"ep0": 10}

    source.slices[0] = endpoint_slice("web-a", "web", SLICE_PORT,
                                      [endpoint(node.ip_of(0)), endpoint(node.ip_of(1), ready=False),
                                       endpoint(node.ip_of(2))])
    assert not proxy.sync().full  # one endpoint changed: a partial update
    counts = node.connect_many(node.client, "10.96.0.10", 80, 60)
    assert set(counts) == {"ep0", "ep2"}, counts

    assert node.connect_many(node.client, "10.96.0.11", 80, 3) == {"ConnectionRefusedError": 3}


def test_external_traffic_policy_local_answers_from_this_nodes_endpoint_only(node: Node) -> None:
    source = StaticSource()
    source.services = [service("web", "10.96.0.10", PORT, type="NodePort", externalTrafficPolicy="Local")]
    source.services[0]["spec"]["ports"] = [{**PORT[0], "nodePort": 30080}]
    source.slices = [endpoint_slice("web-a", "web", SLICE_PORT,
                                    [endpoint(node.ip_of(0), node_name="here"),
                                     *(endpoint(node.ip_of(i), node_name="elsewhere") for i in (1, 2))])]
    # The client (10.244.5.2) outside a cluster CIDR of 10.244.0.0/24: traffic from outside.
    ServiceProxy(source, NodeConfig("10.244.0.0/24", node_name="here"), node.nft()).sync()
    assert node.connect_many(node.client, "10.244.5.1", 30080, 20) == {"ep0": 20}
    # The same client as a pod of the cluster (10.244.0.0/16): every endpoint, as kube-proxy.
    ServiceProxy(source, NodeConfig("10.244.0.0/16", node_name="here"), node.nft()).sync()
    assert set(node.connect_many(node.client, "10.244.5.1", 30080, 60)) == {"ep0", "ep1", "ep2"}


def test_a_nodeport_spreads_over_every_endpoint_and_large_services_change_in_part(node: Node) -> None:
    source = StaticSource()
    source.services = [service("web", "10.96.0.10", [{**PORT[0], "nodePort": 30080}], type="NodePort"),
                       service("big", "10.96.0.20", PORT)]
    # More endpoints than the spread chains cover (addresses nobody answers on: only the
    # table is checked for this one).
    big = [endpoint(f"10.244.9.{i}") for i in range(1, MAX_SPREAD + 3)]
    source.slices = [endpoint_slice("web-a", "web", SLICE_PORT, [endpoint(node.ip_of(i)) for i in range(3)]),
                     endpoint_slice("big-a", "big", SLICE_PORT, big)]
    # The client (10.244.5.2) outside a cluster CIDR of 10.244.0.0/24: traffic from outside.
    proxy = ServiceProxy(source, NodeConfig("10.244.0.0/24"), node.nft())
    assert proxy.sync().full
    assert set(node.connect_many(node.client, "10.244.5.1", 30080, 60)) == {"ep0", "ep1", "ep2"}

    # One endpoint less on each: elements for one, a chain rewritten for the other, in one
    # partial transaction nft accepts (a refused one would have been a full write).
    source.slices = [endpoint_slice("web-a", "web", SLICE_PORT, [endpoint(node.ip_of(i)) for i in (0, 2)]),
                     endpoint_slice("big-a", "big", SLICE_PORT, big[:-1])]
    assert not proxy.sync().full
    listed = node.nft().run("list", "chain", "ip", "sigma", "svc-default/big/tcp/http")
    assert f"numgen random mod {MAX_SPREAD + 1} 0 " in listed and str(big[-1]["addresses"][0]) not in listed
    assert set(node.connect_many(node.client, "10.244.5.1", 30080, 40)) == {"ep0", "ep2"}
    assert set(node.connect_many(node.client, "10.96.0.10", 80, 40)) == {"ep0", "ep2"}
    # Down to what a spread chain covers: the chain goes, the endpoints become elements.
    source.slices[1] = endpoint_slice("big-a", "big", SLICE_PORT, big[:MAX_SPREAD])
    assert not proxy.sync().full
    assert "svc-default/big" not in node.nft().run("list", "table", "ip", "sigma")


UDP_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 5353))
while True:
    data, peer = s.recvfrom(100); s.sendto(sys.argv[1].encode(), peer)
"""
UDP_CLIENT = """
import json, socket, sys
counts = {}
for _ in range(int(sys.argv[1])):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(b"?", ("10.96.0.10", 53))
        try:
            name = s.recvfrom(100)[0].decode()
        except OSError as err:
            name = type(err).__name__
    counts[name] = counts.get(name, 0) + 1
print(json.dumps(counts))
"""


def test_one_port_number_over_udp_and_tcp_reaches_each_protocols_target(node: Node) -> None:
    # The endpoints map's key carries the protocol: DNS-like ports do not mix their targets.
    servers = [subprocess.Popen([*node.enter(ns), sys.executable, "-c", UDP_SERVER, f"udp{i}"])
               for i, ns in enumerate(node.eps)]
    try:
        source = StaticSource()
        source.services = [service("dns", "10.96.0.10", [{"name": "dns", "port": 53, "protocol": "UDP"},
                                                         {"name": "dns-tcp", "port": 53, "protocol": "TCP"}])]
        source.slices = [endpoint_slice("dns-a", "dns", [{"name": "dns", "port": 5353, "protocol": "UDP"},
                                                         {"name": "dns-tcp", "port": 8080, "protocol": "TCP"}],
                                        [endpoint(node.ip_of(i)) for i in range(3)])]
        ServiceProxy(source, NodeConfig("10.244.0.0/16"), node.nft()).sync()
        deadline = time.monotonic() + 10  # the UDP servers bind as they start
        while True:
            out = subprocess.run([*node.enter(node.client), sys.executable, "-c", UDP_CLIENT, "60"],
                                 capture_output=True, text=True, timeout=300, check=True)
            udp = json.loads(out.stdout)
            if set(udp) == {"udp0", "udp1", "udp2"} or time.monotonic() > deadline:
                break
        assert set(udp) == {"udp0", "udp1", "udp2"}, udp
        assert set(node.connect_many(node.client, "10.96.0.10", 53, 60)) == {"ep0", "ep1", "ep2"}
    finally:
        for p in servers:
            p.kill()
            p.wait()
