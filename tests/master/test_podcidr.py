"""Pod CIDR allocation: the pure allocator, the flags' checks, and the controller over a real
registry (what it stores on the Nodes is all there is: a new controller carries on from it)."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from typing import Any

import pytest

from sigma.api.errors import ApiError
from sigma.client.local import LocalClient
from sigma.master.controllers.podcidr import PodCidrController, allocate, cluster_cidrs_of, parse_cluster_cidrs


def node(name: str, cidr: str = "") -> dict[str, Any]:
    spec = {"podCIDR": cidr, "podCIDRs": [cidr]} if cidr else {}
    return {"metadata": {"name": name}, "spec": spec}


def nets(*texts: str) -> list[ipaddress.IPv4Network]:
    return [ipaddress.IPv4Network(t) for t in texts]


def test_blocks_are_handed_out_lowest_first_in_name_order_around_those_taken() -> None:
    decided = allocate(nets("10.244.0.0/16"), 24, [node("c"), node("a", "10.244.0.0/24"), node("b")])
    assert decided == {"b": "10.244.1.0/24", "c": "10.244.2.0/24"}


def test_a_full_cluster_cidr_gives_none_and_a_deleted_nodes_block_is_free_again() -> None:
    full = [node("a", "10.9.0.0/25"), node("b", "10.9.0.128/25")]
    assert allocate(nets("10.9.0.0/24"), 25, [*full, node("c")]) == {"c": None}
    assert allocate(nets("10.9.0.0/24"), 25, [full[1], node("c")]) == {"c": "10.9.0.0/25"}


def test_blocks_span_every_cluster_cidr_in_order() -> None:
    decided = allocate(nets("10.1.0.0/24", "10.2.0.0/24"), 24, [node("a"), node("b")])
    assert decided == {"a": "10.1.0.0/24", "b": "10.2.0.0/24"}


@pytest.mark.parametrize(("text", "mask", "words"), [
    ("10.244.0.0/16,10.244.128.0/17", 24, "overlaps 10.244.0.0/16"),
    ("10.244.0.1/16", 24, "not a network address"),
    ("banana", 24, "not a network address"),
    ("10.244.0.0/16", 8, "--node-cidr-mask-size 8"),
    ("10.244.0.0/16", 31, "--node-cidr-mask-size 31"),
    ("fd00::/48", 64, "only IPv4"),
    ("", 24, "at least one"),
])
def test_bad_cluster_cidr_flags_are_refused_naming_the_flag(text: str, mask: int, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(")):
        parse_cluster_cidrs(text, mask)


def test_a_cluster_cidr_over_the_service_range_is_refused() -> None:
    with pytest.raises(ValueError, match="overlaps the service CIDR"):
        cluster_cidrs_of({"cluster_cidr": "10.96.0.0/12", "service_cluster_ip_range": "10.96.0.0/16"})
    assert cluster_cidrs_of({}) == (nets("10.244.0.0/16"), 24)


def test_the_controller_stores_blocks_on_nodes_and_a_new_one_carries_on(client: LocalClient) -> None:
    for name in ("n1", "n2"):
        client.create("nodes", {"metadata": {"name": name}})
    PodCidrController(client, nets("10.244.0.0/16"), 24).sync()
    stored = {n["metadata"]["name"]: n["spec"] for n in client.list("nodes")["items"]}
    assert stored["n1"]["podCIDR"] == "10.244.0.0/24" and stored["n1"]["podCIDRs"] == ["10.244.0.0/24"]
    assert stored["n2"]["podCIDR"] == "10.244.1.0/24"
    client.delete("nodes", "n1")
    client.create("nodes", {"metadata": {"name": "n3"}})
    restarted = PodCidrController(client, nets("10.244.0.0/16"), 24)  # a master restart: nothing in memory
    assert restarted.sync() == {"n3": "10.244.0.0/24"}  # n1's block, released with it
    assert client.get("nodes", "n2")["spec"]["podCIDR"] == "10.244.1.0/24"


def test_an_exhausted_cidr_leaves_an_event_once(client: LocalClient) -> None:
    for name in ("a", "b"):
        client.create("nodes", {"metadata": {"name": name}})
    ctl = PodCidrController(client, nets("10.9.0.0/24"), 24)
    ctl.sync()
    ctl.sync()
    events = [e for e in client.list("events", "default")["items"] if e["reason"] == "CIDRNotAvailable"]
    assert len(events) == 1 and events[0]["involvedObject"]["name"] == "b"
    assert "podCIDR" not in (client.get("nodes", "b").get("spec") or {})


def test_a_nodes_pod_cidr_is_validated_and_set_once(client: LocalClient) -> None:
    with pytest.raises(ApiError, match=r"spec.podCIDRs\[0\]"):
        client.create("nodes", {"metadata": {"name": "bad"}, "spec": {"podCIDR": "10.1.0.0/33"}})
    with pytest.raises(ApiError, match=r"must equal spec\.podCIDRs"):
        client.create("nodes", {"metadata": {"name": "bad"},
                                "spec": {"podCIDR": "10.1.0.0/24", "podCIDRs": ["10.2.0.0/24"]}})
    made = client.create("nodes", {"metadata": {"name": "n"}})
    made = client.update("nodes", {**made, "spec": {"podCIDR": "10.1.0.0/24", "podCIDRs": ["10.1.0.0/24"]}})
    with pytest.raises(ApiError, match="may not change podCIDR"):
        client.update("nodes", {**made, "spec": {"podCIDR": "10.1.1.0/24", "podCIDRs": ["10.1.1.0/24"]}})


@pytest.mark.e2e
def test_sigma_master_refuses_overlapping_cluster_cidrs_at_start(tmp_path: Any) -> None:
    done = subprocess.run([sys.executable, "-m", "sigma", "master", "--store", f"sqlite:///{tmp_path}/s.db",
                           "--listen", "127.0.0.1:0", "--cluster-cidr", "10.0.0.0/8,10.244.0.0/16"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "--cluster-cidr: 10.244.0.0/16 overlaps 10.0.0.0/8" in done.stderr
