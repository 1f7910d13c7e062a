"""The pure side of the proxy: which endpoints a service port gets, and the rules they become."""

from __future__ import annotations

from typing import Any

from sigma.agent.svcproxy.model import Endpoint, ServicePort, build_model
from sigma.agent.svcproxy.rules import (
    CLUSTER_IPS,
    HAIRPIN,
    MAX_SPREAD,
    NO_ENDPOINT_NODEPORTS,
    NO_ENDPOINT_SERVICES,
    SERVICE_IPS,
    SERVICE_NODEPORTS,
    NodeConfig,
    build_ruleset,
    nodeport_endpoints,
    render_full,
    service_endpoints,
)

from .objects import endpoint, endpoint_slice, service

CFG = NodeConfig(cluster_cidr="10.244.0.0/16")
HTTP = [{"name": "http", "port": 80, "targetPort": "web"}]
SLICE_HTTP = [{"name": "http", "port": 8080, "protocol": "TCP"}]


def _ports(services: list[dict[str, Any]], slices: list[dict[str, Any]]) -> list[ServicePort]:
    return build_model(services, slices).ports


def test_only_ready_endpoints_are_used() -> None:
    slices = [endpoint_slice("web-a", "web", SLICE_HTTP, [endpoint("10.244.1.2"), endpoint("10.244.1.3", ready=False),
                                                         endpoint("10.244.1.4", ready=None)])]
    [port] = _ports([service("web", "10.96.0.10", HTTP)], slices)
    # ready absent means ready (Kubernetes: nil is true)
    assert port.endpoints == (Endpoint("10.244.1.2", 8080), Endpoint("10.244.1.4", 8080))


def test_serving_terminating_endpoints_are_the_fallback_when_none_is_ready() -> None:
    eps = [endpoint("10.244.1.2", ready=False, serving=True, terminating=True),
           endpoint("10.244.1.3", ready=False, serving=False, terminating=True),
           endpoint("10.244.1.4", ready=False)]
    [port] = _ports([service("web", "10.96.0.10", HTTP)], [endpoint_slice("web-a", "web", SLICE_HTTP, eps)])
    assert port.endpoints == (Endpoint("10.244.1.2", 8080),)
    eps.append(endpoint("10.244.1.9"))  # one ready: the terminating ones are dropped
    [port] = _ports([service("web", "10.96.0.10", HTTP)], [endpoint_slice("web-a", "web", SLICE_HTTP, eps)])
    assert port.endpoints == (Endpoint("10.244.1.9", 8080),)


def test_named_ports_resolve_per_slice() -> None:
    slices = [endpoint_slice("web-a", "web", [{"name": "http", "port": 8080}], [endpoint("10.244.1.2")]),
              endpoint_slice("web-b", "web", [{"name": "http", "port": 9090}], [endpoint("10.244.2.2")]),
              endpoint_slice("web-c", "web", [{"name": "metrics", "port": 9100}], [endpoint("10.244.3.2")]),
              endpoint_slice("other", "db", [{"name": "http", "port": 1}], [endpoint("10.244.4.2")])]
    [port] = _ports([service("web", "10.96.0.10", HTTP)], slices)
    assert port.endpoints == (Endpoint("10.244.1.2", 8080), Endpoint("10.244.2.2", 9090))
    script = render_full(build_ruleset([port], CFG))
    assert "10.96.0.10 . 80 . 0 : 10.244.1.2 . 8080" in script and "10.96.0.10 . 80 . 1 : 10.244.2.2 . 9090" in script
    assert "10.244.3.2" not in script and "10.244.4.2" not in script


def test_a_service_without_endpoints_is_rejected() -> None:
    svc = service("web", "10.96.0.10", [{"name": "http", "port": 80, "nodePort": 30080}], type="NodePort")
    rs = build_ruleset(_ports([svc], []), CFG)
    assert rs.maps[NO_ENDPOINT_SERVICES] == {"10.96.0.10 . tcp . 80": "goto reject-chain"}
    assert rs.maps[NO_ENDPOINT_NODEPORTS] == {"tcp . 30080": "goto reject-chain"}
    assert rs.maps[SERVICE_IPS] == {} and rs.chains == {}
    assert "reject with tcp reset" in render_full(rs)


def test_nodeport_marks_for_masquerade_and_spreads_over_the_endpoints() -> None:
    svc = service("web", "10.96.0.10", [{"name": "http", "port": 80, "nodePort": 30080}], type="NodePort")
    rs = build_ruleset(_ports([svc], [endpoint_slice("web-a", "web", SLICE_HTTP, [endpoint("10.244.1.2")])]), CFG)
    assert rs.maps[SERVICE_NODEPORTS] == {"tcp . 30080": "goto nodeport-spread-tcp-1"}
    assert rs.maps[nodeport_endpoints("tcp")] == {"30080 . 0": "10.244.1.2 . 8080"}
    assert ("\tchain nodeport-spread-tcp-1 {\n\t\tjump mark-for-masquerade\n\t\tmeta l4proto tcp dnat ip to "
            "th dport . numgen random mod 1 map @nodeport-endpoints-tcp\n\t}") in rs.fixed
    assert "fib daddr type local" in rs.fixed
    # A ClusterIP service publishes no node port even if the field is filled.
    rs = build_ruleset(_ports([{**svc, "spec": {**svc["spec"], "type": "ClusterIP"}}], []), CFG)
    assert rs.maps[NO_ENDPOINT_NODEPORTS] == {}


def test_hairpin_and_outside_traffic_are_masqueraded() -> None:
    slices = [endpoint_slice("web-a", "web", SLICE_HTTP, [endpoint("10.244.1.2"), endpoint("10.244.1.3")])]
    rs = build_ruleset(_ports([service("web", "10.96.0.10", HTTP)], slices), CFG)
    assert rs.maps[HAIRPIN] == {"10.244.1.2 . 10.244.1.2": "", "10.244.1.3 . 10.244.1.3": ""}
    assert "ct status dnat ip saddr . ip daddr @hairpin masquerade" in rs.fixed
    assert rs.maps[CLUSTER_IPS] == {"10.96.0.10": ""}
    assert "ip daddr @cluster-ips ip saddr != 10.244.0.0/16 jump mark-for-masquerade" in rs.fixed
    # The endpoints are data: numgen picks the i-th of the two under the packet's address and port.
    assert rs.maps[SERVICE_IPS] == {"10.96.0.10 . tcp . 80": "goto spread-tcp-2"}
    assert rs.maps[service_endpoints("tcp")] == {"10.96.0.10 . 80 . 0": "10.244.1.2 . 8080",
                                                  "10.96.0.10 . 80 . 1": "10.244.1.3 . 8080"}
    assert rs.chains == {}  # the spread over two is part of the fixed table
    assert ("\tchain spread-tcp-2 {\n\t\tmeta l4proto tcp dnat ip to ip daddr . th dport . numgen random mod 2 "
            "map @service-endpoints-tcp\n\t}") in rs.fixed
    assert "ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 masquerade" in rs.fixed


def test_egress_masquerade_is_configurable() -> None:
    on = build_ruleset([], NodeConfig("10.244.0.0/16")).fixed
    off = build_ruleset([], NodeConfig("10.244.0.0/16", masquerade_egress=False)).fixed
    assert "ip daddr != 10.244.0.0/16 masquerade" in on and "ip daddr != 10.244.0.0/16 masquerade" not in off


def test_client_ip_affinity_uses_sets_with_the_timeout() -> None:
    svc = service("web", "10.96.0.10", HTTP, sessionAffinity="ClientIP",
                  sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}})
    rs = build_ruleset(_ports([svc], [endpoint_slice("a", "web", SLICE_HTTP, [endpoint("10.244.1.2")])]), CFG)
    assert rs.sets == {"aff-default/web/tcp/http__10.244.1.2/8080": 600}
    assert any(r.startswith("ip saddr @aff-default/web/tcp/http__10.244.1.2/8080 update")
               for r in rs.chains["svc-default/web/tcp/http"])


def test_generation_is_deterministic_and_bad_objects_are_skipped() -> None:
    good = service("web", "10.96.0.10", HTTP)
    bad = service("bad", "10.96.0.11", [{"name": "x", "port": "eighty"}])
    clash = service("clash", "10.96.0.10", HTTP)  # the same ClusterIP and port as web
    headless = service("headless", "None", HTTP)
    slices = [endpoint_slice("a", "web", SLICE_HTTP, [endpoint("10.244.1.3"), endpoint("10.244.1.2")]),
              endpoint_slice("b", "clash", SLICE_HTTP, [endpoint("10.244.9.9")])]
    model = build_model([bad, good, clash, headless], slices)
    assert len(model.problems) == 1 and "bad" in model.problems[0]
    one = render_full(build_ruleset(model.ports, CFG))
    two = render_full(build_ruleset(build_model([headless, clash, good, bad], slices[::-1]).ports, CFG))
    assert one == two
    # The first in (namespace, name) order keeps the ClusterIP; the other is left out whole.
    assert "10.244.9.9" in one and "10.244.1.2" not in one
    assert "service default/web: 10.96.0.10 . tcp . 80" in "".join(build_ruleset(model.ports, CFG).skipped)


def test_external_traffic_policy_local_keeps_outside_traffic_on_this_nodes_endpoints() -> None:
    eps = [endpoint("10.244.1.2", node_name="n1"), endpoint("10.244.2.2", node_name="n2")]
    svc = service("web", "10.96.0.10", [{**HTTP[0], "nodePort": 30080}], type="NodePort",
                  externalTrafficPolicy="Local")
    [port] = build_model([svc], [endpoint_slice("web-a", "web", SLICE_HTTP, eps)], node_name="n1").ports
    assert port.external_local == (Endpoint("10.244.1.2", 8080),)
    assert port.internal_local is None and len(port.endpoints) == 2  # ClusterIP traffic: every endpoint
    rs = build_ruleset([port], NodeConfig("10.244.0.0/16", node_name="n1"))
    # From pods of the cluster: the whole service; from outside: this node's endpoint, the
    # client's address kept (no masquerade mark).
    assert rs.chains["ext-default/web/tcp/http"] == ("ip saddr 10.244.0.0/16 goto svc-default/web/tcp/http",
                                                     "goto loc-default/web/tcp/http")
    assert rs.chains["loc-default/web/tcp/http"] == ("meta l4proto tcp dnat to 10.244.1.2:8080",)
    [elsewhere] = build_model([svc], [endpoint_slice("web-a", "web", SLICE_HTTP, eps)], node_name="n3").ports
    assert build_ruleset([elsewhere], CFG).chains["loc-default/web/tcp/http"] == ("drop",)
    script = render_full(rs)
    assert script.index("chain loc-default/web/tcp/http") < script.index("chain ext-default/web/tcp/http")


def test_internal_traffic_policy_local_sends_cluster_ip_traffic_to_this_node_only() -> None:
    eps = [endpoint("10.244.1.2", node_name="n1"), endpoint("10.244.2.2", node_name="n2")]
    svc = service("web", "10.96.0.10", HTTP, internalTrafficPolicy="Local")
    slices = [endpoint_slice("web-a", "web", SLICE_HTTP, eps)]
    [port] = build_model([svc], slices, node_name="n2").ports
    rs = build_ruleset([port], CFG)
    assert rs.maps[SERVICE_IPS] == {"10.96.0.10 . tcp . 80": "goto spread-tcp-1"}
    assert rs.maps[service_endpoints("tcp")] == {"10.96.0.10 . 80 . 0": "10.244.2.2 . 8080"}
    [none_here] = build_model([svc], slices, node_name="n3").ports
    rs = build_ruleset([none_here], CFG)
    assert rs.maps[SERVICE_IPS] == {"10.96.0.10 . tcp . 80": "drop"} and rs.maps[service_endpoints("tcp")] == {}


def test_ports_with_as_many_endpoints_share_one_spread_chain_up_to_the_largest() -> None:
    few = [endpoint(f"10.244.1.{i}") for i in range(1, MAX_SPREAD + 1)]
    many = [endpoint(f"10.244.2.{i}") for i in range(1, MAX_SPREAD + 2)]
    slices = [endpoint_slice("a-a", "a", SLICE_HTTP, few), endpoint_slice("b-a", "b", SLICE_HTTP, few),
              endpoint_slice("c-a", "c", SLICE_HTTP, many)]
    services = [service("a", "10.96.0.10", HTTP), service("b", "10.96.0.11", HTTP), service("c", "10.96.0.12", HTTP)]
    rs = build_ruleset(_ports(services, slices), CFG)
    assert rs.maps[SERVICE_IPS] == {"10.96.0.10 . tcp . 80": f"goto spread-tcp-{MAX_SPREAD}",
                                    "10.96.0.11 . tcp . 80": f"goto spread-tcp-{MAX_SPREAD}",
                                    "10.96.0.12 . tcp . 80": "goto svc-default/c/tcp/http"}
    assert len(rs.maps[service_endpoints("tcp")]) == 2 * MAX_SPREAD
    # More endpoints than the spread chains cover: a chain of the port's own, the endpoints
    # inline; rule i takes a connection with probability 1/(N-i), uniform over the N.
    chain = rs.chains["svc-default/c/tcp/http"]
    assert list(rs.chains) == ["svc-default/c/tcp/http"] and len(chain) == MAX_SPREAD + 1
    assert chain[0] == f"numgen random mod {MAX_SPREAD + 1} 0 meta l4proto tcp dnat to 10.244.2.1:8080"
    assert chain[-1].startswith("meta l4proto tcp dnat to 10.244.2.")
