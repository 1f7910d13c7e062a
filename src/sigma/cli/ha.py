"""`sigma up --store etcd [--masters N]`: a local etcd and the extra masters beside the
embedded cluster.

The etcd member keeps its data in STATE/etcd on loopback ports chosen at start. The first
master is the embedded cluster's own (port PORT, the kubeconfig's server); masters 2..N are
`sigma master` child processes on free ports of the same address (never PORT+1..., which
another program may hold), with logs in STATE/master-N.log. They die with
us (PR_SET_PDEATHSIG) and are stopped, then etcd, when the cluster stops.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from rich.console import Console

from sigma.cli.up import _die_with_parent, client_host
from sigma.ports import default_or_free, url_host
from sigma.store.etcd_server import EtcdServer


class HaControlPlane:
    def __init__(self, state: Path, host: str, port: int, masters: int, console: Console) -> None:
        self.state = state
        self.host = host
        self.port = port
        self.masters = masters
        self.console = console
        self.etcd = EtcdServer(state / "etcd")
        self._children: list[subprocess.Popen[bytes]] = []

    @property
    def store_url(self) -> str:
        return self.etcd.url

    def __enter__(self) -> HaControlPlane:
        self.etcd.start()
        self.console.print(f"etcd serving on http://{self.etcd.endpoint} (data in {self.state / 'etcd'})")
        shown = url_host(client_host(self.host))
        self.console.print(f"  master 1: https://{shown}:{self.port} (this process; the kubeconfig's server)")
        for index in range(2, self.masters + 1):
            port = default_or_free(self.host, 0)
            with open(self.state / f"master-{index}.log", "ab") as log:
                child = subprocess.Popen(
                    [sys.executable, "-m", "sigma", "master", "--store", self.store_url,
                     "--listen", f"{url_host(self.host)}:{port}", "--state-dir", str(self.state),
                     "--token-file", str(self.state / "auth" / "tokens.csv"), "--tls", "on"],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True, preexec_fn=_die_with_parent)
            self._children.append(child)
            self.console.print(f"  master {index}: https://{shown}:{port} (pid {child.pid}, "
                               f"log {self.state / f'master-{index}.log'})")
        return self

    def __exit__(self, _type: type[BaseException] | None, _error: BaseException | None,
                 _tb: TracebackType | None) -> None:
        for child in self._children:
            child.send_signal(signal.SIGTERM)
        for child in self._children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.etcd.stop()
