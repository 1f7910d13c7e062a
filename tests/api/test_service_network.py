"""The service network's flags and the allocators' pure choices."""

from __future__ import annotations

import random

import pytest

from sigma.api.service_network import ServiceNetwork, pick_ip, pick_port


def test_the_defaults_are_kubernetes_and_the_first_address_is_the_kubernetes_service() -> None:
    net = ServiceNetwork.from_options({})
    assert str(net.cidr) == "10.96.0.0/12" and net.node_ports == (30000, 32767)
    assert net.kubernetes_ip == "10.96.0.1"


@pytest.mark.parametrize(("cidr", "ports", "cluster", "says"), [
    ("10.96.0.0/33", "30000-32767", None, "not a valid CIDR"),
    ("10.96.0.1/12", "30000-32767", None, "not a valid CIDR"),  # host bits set
    ("10.0.0.0/8", "30000-32767", None, "too large"),
    ("fd00::/112", "30000-32767", None, "only IPv4"),
    ("10.96.0.0/12", "32767-30000", None, "LOW <= HIGH"),
    ("10.96.0.0/12", "abc", None, "LOW-HIGH"),
    ("10.96.0.0/12", "30000-70000", None, "65535"),
    ("10.96.0.0/12", "30000-32767", "10.100.0.0/16", "overlaps"),
])
def test_invalid_or_overlapping_flags_are_refused(cidr: str, ports: str, cluster: str | None, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        ServiceNetwork.parse(cidr, ports, cluster)


def test_range_checks_exclude_network_and_broadcast_addresses() -> None:
    net = ServiceNetwork.parse("10.0.0.0/29", "30000-30002")
    assert not net.ip_in_range("10.0.0.0") and not net.ip_in_range("10.0.0.7")
    assert net.ip_in_range("10.0.0.6") and not net.ip_in_range("10.0.1.1") and not net.ip_in_range("nope")
    assert net.port_in_range(30002) and not net.port_in_range(29999)
    assert "10.0.0.0/29" in net.ip_range_error() and "30000-30002" in net.port_range_error()


def test_pick_ip_never_hands_out_the_reserved_first_address_and_fills_the_range() -> None:
    net = ServiceNetwork.parse("10.0.0.0/29", "30000-30002")
    used: set[str] = set()
    rng = random.Random(1)
    while (ip := pick_ip(net, used, rng)) is not None:
        assert ip not in used
        used.add(ip)
    assert used == {f"10.0.0.{i}" for i in range(2, 7)}


def test_pick_port_fills_the_range_then_says_none() -> None:
    net = ServiceNetwork.parse("10.0.0.0/29", "30000-30002")
    used: set[int] = set()
    while (port := pick_port(net, used)) is not None:
        used.add(port)
    assert used == {30000, 30001, 30002}
