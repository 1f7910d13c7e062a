"""An agent on another host (network namespaces): cut its link, the node goes NotReady;
restore it, the agent reconnects and the node is Ready again.

Host h0 runs etcd (on its own loopback) and a master on 169.254.77.1; host h1 runs
`sigma agent` pointed at it, renewing its node Lease every second. The master's node
lifecycle controller gets short timings (--option), so the whole test takes ~30 s.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sigma.store.etcd_server import EtcdServer, etcd_binary
from tests.netns import Network, netns_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.root,
    pytest.mark.skipif(netns_available() is not None, reason=str(netns_available())),
    pytest.mark.skipif(etcd_binary() is None, reason="etcd is not installed"),
]

MASTER_PORT = 6443
NODE = "far-node"
GRACE_S = 3


@pytest.fixture
def net() -> Iterator[Network]:
    with Network(hosts=2) as network:
        yield network


def wait_until(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not {what} after {timeout}s")


def ready_status(net: Network, master: str) -> str | None:
    node = net.curl(0, f"{master}/api/v1/nodes/{NODE}")
    if node is None:
        return None
    for condition in node.get("status", {}).get("conditions", []):
        if condition["type"] == "Ready":
            return str(condition["status"])
    return None


def test_a_cut_link_makes_the_node_not_ready_and_the_agent_reconnects(net: Network, tmp_path: Path) -> None:
    etcd = EtcdServer(tmp_path / "etcd", netns=net.hosts[0]).start()
    try:
        master = f"http://{net.address(0)}:{MASTER_PORT}"
        net.popen(0, [sys.executable, "-m", "sigma", "master", "--store", etcd.url,
                      "--listen", f"{net.address(0)}:{MASTER_PORT}", "--option", f"node_grace_s={GRACE_S}",
                      "--option", "node_monitor_period_s=0.5", "--option", "pod_eviction_timeout_s=600"],
                  tmp_path / "master.log")
        wait_until("master ready", lambda: net.curl(0, f"{master}/version"), 30)
        agent = net.popen(1, [sys.executable, "-m", "sigma", "agent", "--master", master, "--node-name", NODE,
                              "--state-dir", str(tmp_path / "agent"), "--listen", f"{net.address(1)}:10250",
                              "--address", net.address(1), "--cgroup-root", f"{net.prefix}-agent",
                              "--lease-interval", "1", "--drain-on-exit"],
                          tmp_path / "agent.log")
        wait_until("node Ready", lambda: ready_status(net, master) == "True", 30)

        net.cut(1)
        cut_at = time.monotonic()
        wait_until("node NotReady", lambda: ready_status(net, master) == "Unknown", GRACE_S + 10)
        print(f"node NotReady {time.monotonic() - cut_at:.1f}s after the cut (grace {GRACE_S}s)")
        assert net.curl(1, f"{master}/version", timeout=0.5) is None  # really cut

        net.restore(1)
        restored_at = time.monotonic()
        wait_until("node Ready again", lambda: ready_status(net, master) == "True", 30)
        print(f"node Ready {time.monotonic() - restored_at:.1f}s after the link came back")
        assert agent.poll() is None, (tmp_path / "agent.log").read_text()[-3000:]
        agent.send_signal(signal.SIGTERM)  # drain: leave no cgroup behind
        with contextlib.suppress(subprocess.TimeoutExpired):
            agent.wait(timeout=20)
    finally:
        etcd.stop()
