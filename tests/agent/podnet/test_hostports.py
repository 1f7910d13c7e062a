"""The hostPort mappings of a pod and the nft table they make (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from sigma.agent.podnet.hostport_table import HostPortTable
from sigma.agent.podnet.hostports import HostPort, HostPortError, Reserved, pod_host_ports, render


def pod(*ports: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "p", "uid": "u"},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]},
                                    {"name": "d", "ports": list(ports)}]}}


def test_a_pod_maps_its_host_ports_to_its_address_with_the_wildcard_as_every_address() -> None:
    got = pod_host_ports(pod({"containerPort": 8080, "hostPort": 80},
                             {"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "0.0.0.0"},
                             {"containerPort": 9000, "hostPort": 9000, "hostIP": "192.0.2.7"},
                             {"containerPort": 9100, "hostPort": 0}), "10.244.1.5")
    assert got == [HostPort("tcp", "", 80, "10.244.1.5", 8080), HostPort("udp", "", 5353, "10.244.1.5", 53),
                   HostPort("tcp", "192.0.2.7", 9000, "10.244.1.5", 9000)]


@pytest.mark.parametrize(("port", "field", "words"), [
    ({"containerPort": 80, "hostPort": 65536}, "spec.containers[1].ports[0].hostPort", "1-65535"),
    ({"containerPort": 80, "hostPort": -1}, "spec.containers[1].ports[0].hostPort", "1-65535"),
    ({"containerPort": 80, "hostPort": 10250}, "spec.containers[1].ports[0].hostPort", "agent's own port"),
    ({"containerPort": 80, "hostPort": 30080}, "spec.containers[1].ports[0].hostPort", "NodePort range 30000-32767"),
    ({"containerPort": 80, "hostPort": 80, "protocol": "ICMP"}, "spec.containers[1].ports[0].protocol", "TCP, UDP"),
    ({"containerPort": 80, "hostPort": 80, "hostIP": "fe80::1"}, "spec.containers[1].ports[0].hostIP", "IPv4"),
])
def test_a_host_port_the_node_cannot_give_is_refused_naming_the_field(port: dict[str, Any], field: str,
                                                                     words: str) -> None:
    with pytest.raises(HostPortError) as err:
        pod_host_ports(pod(port), "10.244.1.5", Reserved(agent_ports=(10250,)))
    assert str(err.value).startswith(field + ":") and words in str(err.value), err.value


def test_one_host_port_twice_in_a_pod_is_refused() -> None:
    with pytest.raises(HostPortError, match=r"ports\[1\].hostPort: 80/tcp is given twice"):
        pod_host_ports(pod({"containerPort": 80, "hostPort": 80}, {"containerPort": 81, "hostPort": 80}), "10.0.0.1")


def test_the_table_dnats_node_addresses_and_masquerades_localhost_and_pods_of_the_node() -> None:
    text = render([HostPort("tcp", "", 80, "10.244.1.5", 8080), HostPort("udp", "192.0.2.7", 53, "10.244.1.6", 53)],
                  "10.244.1.0/24")
    assert text.startswith("table ip sigma-hostports {}\ndelete table ip sigma-hostports\n")
    assert "\t\tfib daddr type local tcp dport 80 dnat to 10.244.1.5:8080\n" in text
    assert "\t\tip daddr 192.0.2.7 udp dport 53 dnat to 10.244.1.6:53\n" in text
    assert "ct status dnat ip saddr 127.0.0.0/8 ip daddr 10.244.1.5 tcp dport 8080 masquerade" in text
    assert "ct status dnat ip saddr 10.244.1.0/24 ip daddr 10.244.1.5 tcp dport 8080 masquerade" in text
    assert "type nat hook prerouting" in text and "type nat hook output" in text


def test_a_localhost_host_port_drops_new_packets_from_pods_to_the_node_loopback() -> None:
    guard = 'iifname "sigma0" ip daddr 127.0.0.0/8 ct state != { established, related } drop'
    assert guard in render([HostPort("tcp", "", 80, "10.244.1.5", 8080)], "10.244.1.0/24")
    # A hostIP mapping is not reached on 127.0.0.1: route_localnet stays off, no guard needed.
    assert guard not in render([HostPort("tcp", "192.0.2.7", 80, "10.244.1.5", 8080)], "10.244.1.0/24")


def test_no_mapping_left_removes_the_table() -> None:
    assert render([], "10.244.1.0/24") == "table ip sigma-hostports {}\ndelete table ip sigma-hostports\n"


def test_a_port_another_pod_of_the_node_holds_is_refused_with_its_name() -> None:
    table = HostPortTable()
    table.set("u1", "default/web-0", [HostPort("tcp", "", 80, "10.244.1.5", 8080)])
    with pytest.raises(HostPortError, match="hostPort 80/TCP is taken by pod default/web-0"):
        table.check("u2", [HostPort("tcp", "10.0.0.1", 80, "", 8080)])
    table.check("u2", [HostPort("udp", "", 80, "", 8080)])  # another protocol
    table.check("u1", [HostPort("tcp", "", 80, "", 8080)])  # the pod itself, made again
    table.set("u1", "", [])
    table.check("u2", [HostPort("tcp", "", 80, "", 8080)])


def test_a_claim_holds_the_port_before_the_pod_has_an_address_until_it_is_let_go() -> None:
    table = HostPortTable()
    table.claim("u1", "default/web-0", [HostPort("tcp", "", 80, "", 8080)])
    with pytest.raises(HostPortError, match="taken by pod default/web-0"):
        table.claim("u2", "default/web-1", [HostPort("tcp", "", 80, "", 8080)])
    assert "u2" not in table.by_pod
    table.set("u1", "", [])  # its ADD failed, or the pod went
    table.claim("u2", "default/web-1", [HostPort("tcp", "", 80, "", 8080)])
    assert table.by_pod["u2"][0] == "default/web-1"
