"""Reading what the bandwidth plugin and tc leave: the host-side links from the ADD result,
the root tbf from `tc -j`, /proc/net/dev counters; and the network rung's metric families."""

from __future__ import annotations

import json

from sigma.agent.netqos import NetReport, net_families
from sigma.agent.podnet.shaping import Tbf, burst_bytes, host_links, parse_net_dev, parse_tbf, sigmas_burst, tbf_args
from sigma.agent.usage_metrics import Families

RESULT = {"interfaces": [{"name": "sigma0"}, {"name": "vethe66060ee"},
                         {"name": "eth0", "sandbox": "/var/run/netns/x"}, {"name": "bwp36fbeded3ebf"}]}


def test_the_host_side_veth_and_ifb_come_from_the_add_result() -> None:
    links = host_links(RESULT, "sigma0")
    assert links is not None and (links.veth, links.ifb) == ("vethe66060ee", "bwp36fbeded3ebf")
    no_ifb = host_links({"interfaces": RESULT["interfaces"][:3]}, "sigma0")
    assert no_ifb is not None and no_ifb.ifb is None
    assert host_links(None, "sigma0") is None


def test_the_root_tbf_is_read_in_bits_and_the_plugins_burst_is_not_sigmas() -> None:
    shown = json.dumps([{"kind": "tbf", "handle": "1:", "root": True, "options": {"rate": 1250000,
                                                                                 "burst": 268435453}},
                        {"kind": "ingress", "handle": "ffff:", "parent": "ffff:fff1", "options": {}}])
    tbf = parse_tbf(shown)
    assert tbf == Tbf(10_000_000, 268435453) and not sigmas_burst(tbf)
    assert sigmas_burst(Tbf(10_000_000, burst_bytes(10_000_000) - 3))
    assert parse_tbf("[]") is None and parse_tbf("not json") is None
    assert burst_bytes(10**9) == 2_500_000 and burst_bytes(10**6) == 256 * 1024
    assert tbf_args(5_000_000)[:3] == ["tbf", "rate", "5000000bit"]


def test_proc_net_dev_gives_received_and_transmitted_bytes() -> None:
    text = ("Inter-|   Receive                                                |  Transmit\n"
            " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls"
            " carrier compressed\n"
            "    lo:     100       1    0    0    0     0          0         0      200       2    0    0    0     0"
            "       0          0\n"
            "veth1: 5000 10 0 0 0 0 0 0 7000 12 0 0 0 0 0 0\n")
    assert parse_net_dev(text) == {"lo": (100, 200), "veth1": (5000, 7000)}


def test_the_metric_families_say_traffic_budget_and_each_limit() -> None:
    report = NetReport({"egress": 60_000_000, "ingress": 0}, {"egress": 5_000_000, "ingress": 0},
                       {"egress": 0, "ingress": 50_000_000}, {"egress": True, "ingress": False},
                       {("default", "batch-1"): {"egress": 5_000_000, "ingress": 30_000_000}})
    text = Families(net_families(report)).render()
    assert 'sigma_agent_network_bits_per_second{direction="egress",tier="prod"} 6e+07' in text
    assert 'sigma_agent_batch_network_squeezed{direction="egress"} 1.0' in text
    assert ('sigma_agent_batch_network_limit_bits_per_second{direction="egress",namespace="default",pod="batch-1"} '
            '5e+06') in text
