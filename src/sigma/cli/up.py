"""The embedded cluster of `sigma up`: the master in this process, a local agent beside it,
and the demo workloads. Ctrl-C stops everything and leaves nothing running."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from rich.console import Console

from sigma.master.process import Master

log = logging.getLogger("sigma.up")


class EmbeddedCluster:
    def __init__(self, state: Path, port: int, demo: bool = True, agent: bool = True) -> None:
        self.state = state
        self.port = port
        self.demo = demo
        self.agent = agent
        self.master = Master(f"sqlite://{state / 'state.db'}", "127.0.0.1", port)
        self._agent_stop = threading.Event()

    def _on_ready(self, console: Console) -> None:
        kubeconfig = self.state / "kubeconfig"
        if self.demo:
            from sigma.demo import apply_demo

            apply_demo(self.master.registry)
        console.print(f"[bold green]Sigma is up[/] on http://127.0.0.1:{self.port}")
        console.print(f"  kubeconfig: {kubeconfig}")
        console.print(f"  try:        kubectl --kubeconfig {kubeconfig} get pods -A -o wide")
        console.print(f"              sigma get pods -A --kubeconfig {kubeconfig}")
        console.print("  stop:       Ctrl-C")

    def run(self, console: Console) -> int:
        self.master.serve(on_ready=lambda: self._on_ready(console))
        self._agent_stop.set()
        console.print("Sigma stopped.")
        return 0
