"""The pytest fixture for a small cluster on hosts in network namespaces: the Cluster class
itself lives in sigma.lab.netcluster (shared with `sigma bench service`), see there.

    h0: `sigma master` (SQLite) + agent node-a      h1: agent node-b      h2: agent node-c
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sigma.agent.podnet.network import DEFAULT_ETC_ROOT
from sigma.lab.netcluster import NODES, PORT, SERVE, A, B, C, Cluster, wait_until
from tests.netns import Network

__all__ = ["NODES", "PORT", "SERVE", "A", "B", "C", "Cluster", "cluster_fixture", "wait_until"]


@pytest.fixture(name="cluster")
def cluster_fixture(tmp_path: Path) -> Iterator[Cluster]:
    with Network(hosts=3) as net:
        assert isinstance(net, Network)
        made = Cluster(net, tmp_path, DEFAULT_ETC_ROOT)
        try:
            yield made
        finally:
            made.cleanup()
