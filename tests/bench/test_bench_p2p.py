"""`sigma bench p2p` in its small CI configuration: 4 nodes in network namespaces, a 16 MiB
blob, 200 Mbit/s tbf links, faults on (a corrupt peer, a peer killed half-way). Run through
the CLI like a user would. No timing assertions: this machine's CPU is shared."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sigma.lab.netlab import netns_available

REGISTRY_BIN = "/usr/bin/docker-registry"
WHY = netns_available(("ip", "tc", "nsenter", "curl"))
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.root,
    pytest.mark.skipif(WHY is not None, reason=str(WHY)),
    pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="docker-registry is not installed"),
]
KEYS = {"bench", "nodes", "size_mib", "link_mbit", "p2p_p50_ratio", "p2p_p99_ratio", "direct_p99_ratio",
        "source_egress_ratio"}


def bench_namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.startswith("sigma-b-")}


def test_the_small_configuration_distributes_the_blob_to_every_surviving_node() -> None:
    before = bench_namespaces()
    done = subprocess.run(
        [sys.executable, "-m", "sigma", "bench", "p2p", "--nodes", "4", "--size-mib", "16", "--link-mbit", "200",
         "--piece-mib", "1", "--faults", "--json"],
        capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result) >= KEYS
    assert (result["bench"], result["nodes"], result["size_mib"], result["link_mbit"]) == ("p2p", 4, 16, 200)
    # One node was killed half-way; the three others (the corrupt one too) got the blob.
    assert result["faults"]["killed_nodes"] == 1
    assert result["nodes_completed"] == result["digests_ok"] == 3
    # Each piece left the registry about once, far from once per node (4, as the direct pulls
    # of the same run): headers on top, and the pieces only the killed node held re-fetched.
    assert 0.95 <= result["source_egress_ratio"] < 2.5
    assert result["p2p_p99_ratio"] > 0 and result["direct_p99_ratio"] > 0
    # Each node's memory was reserved untimed; CPU is split per kind for the nodes.
    assert result["warm_memory"] is True
    assert result["cpu"]["p2p"]["nodes_user_s"] >= 0 and result["cpu"]["p2p"]["nodes_system_s"] >= 0
    assert bench_namespaces() == before  # every namespace it made is gone


def test_the_help_names_the_issue_flags() -> None:
    out = subprocess.run([sys.executable, "-m", "sigma", "bench", "p2p", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for flag in ("--nodes", "--size-mib", "--link-mbit", "--faults", "--piece-mib", "--direct", "--warm-memory"):
        assert flag in out.stdout
