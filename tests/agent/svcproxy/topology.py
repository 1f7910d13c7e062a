"""A node in network namespaces for the proxy's e2e tests, all created here and deleted on close:

    client ns  eth0 10.244.5.2/24 ─veth─ c0 10.244.5.1/24 ┐
                                                          node ns (ip_forward, Sigma's table here)
    ep ns i    eth0 10.244.0.1i/24 ─veth─ ┤ bridge sigma0 10.244.0.1/24
                                          10.96.0.0/12 routed on sigma0: a ClusterIP without endpoints reaches forward

The client stands for a pod on another node (inside the cluster CIDR, not on this bridge).
Each endpoint runs a TCP server that answers its own name and closes.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time

from sigma.agent.svcproxy.nft import Nft

SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[2]))); s.listen(128)
while True:
    c, _ = s.accept(); c.sendall(sys.argv[1].encode()); c.close()
"""

CLIENT = """
import json, socket, sys
counts = {}
for _ in range(int(sys.argv[3])):
    try:
        with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as c:
            name = c.recv(64).decode() or "empty"
    except OSError as err:
        name = type(err).__name__
    counts[name] = counts.get(name, 0) + 1
print(json.dumps(counts))
"""


def netns_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft", "nsenter"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            return f"{tool} is not installed"
    return None


class Node:
    def __init__(self, endpoints: int = 3) -> None:
        tag = secrets.token_hex(3)
        self.node, self.client = f"sgp-{tag}-node", f"sgp-{tag}-cl"
        self.eps = [f"sgp-{tag}-ep{i}" for i in range(endpoints)]
        self.created: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    def ip_of(self, i: int) -> str:
        return f"10.244.0.1{i}"

    def enter(self, ns: str) -> list[str]:
        return ["nsenter", f"--net=/var/run/netns/{ns}", "--"]

    def nft(self) -> Nft:
        return Nft(self.enter(self.node))

    def sh(self, ns: str, *cmd: str) -> None:
        subprocess.run([*self.enter(ns), *cmd], check=True, capture_output=True)

    def __enter__(self) -> Node:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        for ns in (self.node, self.client, *self.eps):
            subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
            self.created.append(ns)
            self.sh(ns, "ip", "link", "set", "lo", "up")
        n = self.node
        self.sh(n, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self.sh(n, "ip", "link", "add", "sigma0", "type", "bridge")
        self.sh(n, "ip", "addr", "add", "10.244.0.1/24", "dev", "sigma0")
        self.sh(n, "ip", "link", "set", "sigma0", "up")
        self.sh(n, "ip", "route", "add", "10.96.0.0/12", "dev", "sigma0")
        self.sh(n, "ip", "link", "add", "c0", "type", "veth", "peer", "name", "eth0", "netns", self.client)
        self.sh(n, "ip", "addr", "add", "10.244.5.1/24", "dev", "c0")
        self.sh(n, "ip", "link", "set", "c0", "up")
        self._pod(self.client, "10.244.5.2/24", "10.244.5.1")
        for i, ns in enumerate(self.eps):
            self.sh(n, "ip", "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            self.sh(n, "ip", "link", "set", f"v{i}", "master", "sigma0", "up")
            # As the CNI bridge sets it: with br_netfilter a DNATed packet whose endpoint sits
            # behind the port it came in on is bridged straight back out of that port.
            self.sh(n, "ip", "link", "set", f"v{i}", "type", "bridge_slave", "hairpin", "on")
            self._pod(ns, f"{self.ip_of(i)}/24", "10.244.0.1")
            self.procs.append(subprocess.Popen([*self.enter(ns), sys.executable, "-c", SERVER, f"ep{i}", "8080"]))
        for ns in self.eps:
            self._wait_listening(ns, 8080)

    def _pod(self, ns: str, cidr: str, gateway: str) -> None:
        self.sh(ns, "ip", "addr", "add", cidr, "dev", "eth0")
        self.sh(ns, "ip", "link", "set", "eth0", "up")
        self.sh(ns, "ip", "route", "add", "default", "via", gateway)

    def _wait_listening(self, ns: str, port: int) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            out = subprocess.run([*self.enter(ns), "ss", "-ltn"], capture_output=True, text=True)
            if f":{port} " in out.stdout:
                return
            time.sleep(0.05)
        raise TimeoutError(f"no server on port {port} in {ns}")

    def connect_many(self, ns: str, ip: str, port: int, times: int) -> dict[str, int]:
        import json

        out = subprocess.run([*self.enter(ns), sys.executable, "-c", CLIENT, ip, str(port), str(times)],
                             capture_output=True, text=True, timeout=120, check=True)
        return dict(json.loads(out.stdout))

    def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        self.procs = []
        for ns in self.created:  # veths, the bridge and Sigma's table go with their namespace
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.created = []

