"""The pure parts of the pod network: the configuration list, CNI configs and results, the
route diff, the pod's resolv.conf and hosts, the bandwidth annotations."""

from __future__ import annotations

from typing import Any

import pytest

from sigma.agent.podnet import conflist, dns
from sigma.agent.podnet.cni import parse_result, plugin_config
from sigma.agent.podnet.network import PodNetworkError, bandwidth_config
from sigma.agent.podnet.routes import desired_routes, route_diff
from sigma.agent.runtime.base import ContainerSpec
from sigma.agent.runtime.runc import oci_config


def test_the_conflist_bridges_on_sigma0_with_the_gateway_first_in_the_pod_cidr() -> None:
    made = conflist.conflist("10.244.3.0/24", "/state/podnet/ipam")
    bridge = made["plugins"][0]
    assert (bridge["type"], bridge["bridge"], bridge["isGateway"], bridge["ipMasq"], bridge["hairpinMode"]) == (
        "bridge", "sigma0", True, False, True)
    assert bridge["ipam"] == {"type": "host-local", "ranges": [[{"subnet": "10.244.3.0/24", "gateway": "10.244.3.1"}]],
                              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "/state/podnet/ipam"}
    assert [p["type"] for p in made["plugins"]] == ["bridge", "bandwidth", "loopback"]
    assert "portmap" not in {p["type"] for p in made["plugins"]}
    assert conflist.gateway("10.244.3.0/24") == "10.244.3.1"


def test_a_plugin_gets_the_list_name_version_prev_result_and_only_its_capabilities() -> None:
    made = conflist.conflist("10.244.3.0/24", "/d")
    runtime = {"bandwidth": {"ingressRate": 1000}, "portMappings": []}
    shaped = plugin_config(made, made["plugins"][1], {"ips": []}, runtime)
    assert shaped == {"type": "bandwidth", "cniVersion": "1.0.0", "name": "sigma",
                      "runtimeConfig": {"bandwidth": {"ingressRate": 1000}}, "prevResult": {"ips": []}}
    assert "runtimeConfig" not in plugin_config(made, made["plugins"][0], None, runtime)


RESULT_1_0: dict[str, Any] = {
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "sigma0", "mac": "aa"}, {"name": "veth1", "mac": "bb"},
                   {"name": "eth0", "mac": "cc", "sandbox": "/var/run/netns/sigma-x"}],
    "ips": [{"interface": 2, "address": "10.244.3.7/24", "gateway": "10.244.3.1"}],
}


def test_results_give_the_sandbox_interfaces_addresses() -> None:
    parsed = parse_result(RESULT_1_0)
    assert parsed.ips == ("10.244.3.7/24",) and parsed.pod_ips == ["10.244.3.7"] and parsed.gateway == "10.244.3.1"
    with_lo = {**RESULT_1_0, "interfaces": [*RESULT_1_0["interfaces"], {"name": "lo", "sandbox": "/x"}],
               "ips": [*RESULT_1_0["ips"], {"interface": 3, "address": "127.0.0.1/8"}]}
    assert parse_result(with_lo).pod_ips == ["10.244.3.7"]
    assert parse_result({"cniVersion": "0.2.0", "ip4": {"ip": "10.1.0.5/16", "gateway": "10.1.0.1"}}).pod_ips == [
        "10.1.0.5"]


@pytest.mark.parametrize("bad", [[], {"cniVersion": "0.2.0"}, {"ips": [{"interface": 0}]}])
def test_a_malformed_result_is_a_value_error(bad: Any) -> None:
    with pytest.raises(ValueError):
        parse_result(bad)


def node(name: str, cidr: str, ip: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr} if cidr else {},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}] if ip else []}}


def test_routes_go_to_every_other_node_with_a_block_and_an_address() -> None:
    nodes = [node("me", "10.244.0.0/24", "169.254.77.1"), node("b", "10.244.1.0/24", "169.254.77.2"),
             node("new", "", "169.254.77.3"), node("silent", "10.244.2.0/24", ""),
             node("bad", "10.244.x/24", "169.254.77.5")]
    assert desired_routes(nodes, "me") == {"10.244.1.0/24": "169.254.77.2"}


def test_the_route_diff_sets_what_is_missing_or_moved_and_removes_what_no_node_has() -> None:
    current = {"10.244.1.0/24": "169.254.77.2", "10.244.2.0/24": "169.254.77.9", "10.244.9.0/24": "169.254.77.4"}
    desired = {"10.244.1.0/24": "169.254.77.2", "10.244.2.0/24": "169.254.77.3", "10.244.3.0/24": "169.254.77.5"}
    assert route_diff(desired, current) == (
        {"10.244.2.0/24": "169.254.77.3", "10.244.3.0/24": "169.254.77.5"}, ["10.244.9.0/24"])
    assert route_diff(desired, desired) == ({}, [])


HOST = dns.parse_resolv("# host\nnameserver 192.0.2.53\nsearch corp.example\noptions edns0\n")


def pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "shop", "uid": "u"}, "spec": spec}


def test_cluster_first_resolves_through_the_gateway_with_the_pods_search_path() -> None:
    assert dns.resolv_conf(pod(), "10.244.3.1", HOST) == (
        "nameserver 10.244.3.1\nsearch shop.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
        "options ndots:5\n")


def test_host_network_and_default_get_the_hosts_resolver_unless_cluster_first_with_host_net() -> None:
    host_text = "nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n"
    assert dns.resolv_conf(pod(hostNetwork=True), "10.244.3.1", HOST) == host_text
    assert dns.resolv_conf(pod(dnsPolicy="Default"), "10.244.3.1", HOST) == host_text
    assert dns.resolv_conf(pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"), "10.244.3.1",
                           HOST).startswith("nameserver 10.244.3.1\n")


def test_dns_config_is_merged_and_policy_none_takes_it_alone() -> None:
    config = {"nameservers": ["192.0.2.1"], "searches": ["x.example"],
              "options": [{"name": "ndots", "value": "2"}, {"name": "single-request"}]}
    merged = dns.resolv_conf(pod(dnsConfig=config), "10.244.3.1", HOST)
    assert "nameserver 10.244.3.1\nnameserver 192.0.2.1\n" in merged
    assert merged.endswith("corp.example x.example\noptions ndots:2 single-request\n")
    assert dns.resolv_conf(pod(dnsPolicy="None", dnsConfig=config), "10.244.3.1", HOST) == (
        "nameserver 192.0.2.1\nsearch x.example\noptions ndots:2 single-request\n")


def test_the_hosts_file_names_the_pod_on_its_address() -> None:
    text = dns.hosts_file(pod(hostname="h", subdomain="s", hostAliases=[{"ip": "192.0.2.9", "hostnames": ["a"]}]),
                          ["10.244.3.7"])
    assert "127.0.0.1\tlocalhost" in text and "10.244.3.7\th.s.shop.svc.cluster.local\th" in text
    assert text.endswith("192.0.2.9\ta\n")
    assert "10.244.3.7\tweb\n" in dns.hosts_file(pod(), ["10.244.3.7"])


def test_bandwidth_annotations_become_the_capability_in_bits_per_second() -> None:
    annotated = {"metadata": {"annotations": {"kubernetes.io/ingress-bandwidth": "10M",
                                              "kubernetes.io/egress-bandwidth": "1G"}}}
    assert bandwidth_config(annotated) == {"bandwidth": {"ingressRate": 10_000_000, "ingressBurst": 2**31 - 1,
                                                         "egressRate": 10**9, "egressBurst": 2**31 - 1}}
    assert bandwidth_config({"metadata": {}}) == {}
    with pytest.raises(PodNetworkError, match=r"kubernetes\.io/egress-bandwidth"):
        bandwidth_config({"metadata": {"annotations": {"kubernetes.io/egress-bandwidth": "fast"}}})


def test_a_container_with_a_netns_joins_it_and_gets_the_pods_etc_files() -> None:
    spec = ContainerSpec("u", "ns", "p", "c", 0, ["sh"], netns_path="/var/run/netns/sigma-u",
                         etc_files=(("/etc/resolv.conf", "/run/x/resolv.conf"),))
    config = oci_config(spec, {}, "")
    assert {"type": "network", "path": "/var/run/netns/sigma-u"} in config["linux"]["namespaces"]
    assert {"destination": "/etc/resolv.conf", "type": "bind", "source": "/run/x/resolv.conf",
            "options": ["rbind", "ro", "nosuid", "nodev"]} in config["mounts"]
    host = oci_config(ContainerSpec("u", "ns", "p", "c", 0, ["sh"]), {}, "")
    assert not any(n["type"] == "network" for n in host["linux"]["namespaces"])  # the host's network
