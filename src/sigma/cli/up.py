"""The embedded cluster of `sigma up`: the master in this process, a local agent beside it,
and the demo workloads. Ctrl-C stops everything and leaves nothing running.

The agent is a child process (`sigma agent --drain-on-exit`) rather than a thread: it gets
its own signal handling and log, and the kernel tells it when we die (PR_SET_PDEATHSIG),
so even a `kill -9` of `sigma up` ends with the agent stopping every pod it started.
Shutdown order: the API server stops first (uvicorn handles SIGINT/SIGTERM), then the agent
is told to stop and drains its pods (node-local work, no API needed), then we exit.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import FrameType

from rich.console import Console

from sigma.api.auth import AuthOptions
from sigma.api.auth.tokens import create_bootstrap_token
from sigma.master.process import Master
from sigma.ui import once_login_url

log = logging.getLogger("sigma.up")

PR_SET_PDEATHSIG = 1
AGENT_STOP_TIMEOUT_S = 25.0
AGENT_JOIN_TTL_S = 600.0  # long enough for a slow start; the agent keeps its node credential


def _die_with_parent() -> None:
    # Runs in the forked child before exec: SIGTERM when the parent (thread) dies.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedCluster:
    def __init__(self, state: Path, port: int, demo: bool = True, agent: bool = True,
                 cgroup_root: str = "sigma", node_name: str | None = None, store_url: str | None = None) -> None:
        self.state = state
        self.port = port
        self.demo = demo
        self.agent = agent
        self.cgroup_root = cgroup_root
        self.node_name = node_name or socket.gethostname().lower()
        # store_url: etcd when `sigma up --store etcd` runs several masters (cli/ha.py).
        # No anonymous access: the kubeconfig carries the admin's token (cli/master.py) and the
        # agent joins with a bootstrap token, getting its own node credential. TLS even on
        # loopback: kubectl does not send a bearer token over plain http.
        auth = AuthOptions(state_dir=state, token_file=state / "auth" / "tokens.csv", tls=True)
        self.master = Master(store_url or f"sqlite://{state / 'state.db'}", "127.0.0.1", port, auth=auth)
        self._agent: subprocess.Popen[bytes] | None = None
        self._signalled = False

    def _on_ready(self, console: Console) -> None:
        kubeconfig = self.state / "kubeconfig"

        def say(line: str) -> None:
            console.print(line, soft_wrap=True)  # never break a command line in two

        if self.demo:
            from sigma.demo.cluster import apply_demo

            apply_demo(self.master.registry)
        say(f"[bold green]Sigma is up[/] on https://127.0.0.1:{self.port}")
        if self._agent is not None:
            say(f"  node:       {self.node_name} (agent pid {self._agent.pid}, state in {self.state / 'agent'})")
        say(f"  dashboard:  {once_login_url(self.master.auth_setup, f'https://127.0.0.1:{self.port}')}")
        say(f"  kubeconfig: {kubeconfig}")
        say(f"  try:        kubectl --kubeconfig {kubeconfig} get pods -A -o wide")
        say(f"              sigma get pods -A --kubeconfig {kubeconfig}")
        if self.demo:
            say(f"              kubectl --kubeconfig {kubeconfig} logs demo-batch")
            say(f"              kubectl --kubeconfig {kubeconfig} get batchjobs")
        say("  stop:       Ctrl-C")

    def _start_agent(self) -> None:
        """Started before the API server (in the main thread, which PDEATHSIG is tied to);
        it retries registering until the server answers."""
        # A single-use token, in the agent's environment rather than its command line (which
        # `ps` shows to everyone). Once joined, the agent's kubeconfig is used and the token,
        # if unused, expires.
        join_token = create_bootstrap_token(self.state, ttl_s=AGENT_JOIN_TTL_S)
        env = {**os.environ, "SIGMA_BOOTSTRAP_TOKEN": join_token}
        cmd = [sys.executable, "-m", "sigma", "agent", "--master", f"https://127.0.0.1:{self.port}",
               "--ca-file", str(self.state / "auth" / "ca.crt"),
               "--node-name", self.node_name, "--state-dir", str(self.state / "agent"),
               "--listen", "127.0.0.1:0", "--address", "127.0.0.1", "--cgroup-root", self.cgroup_root,
               "--drain-on-exit"]
        # Its own session: a terminal's Ctrl-C reaches us, and we stop the agent in order.
        # umask 022: the agent's pods inherit it (statemodes.py); ours is 077.
        self._agent = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True, env=env,
                                       umask=0o022, preexec_fn=_die_with_parent)

    def _tell_agent_to_stop(self) -> None:
        """SIGTERM to the agent as the master begins to stop: it drains its pods (each within
        its own grace period; node-local work) while the master winds down."""
        agent = self._agent
        if agent is not None and agent.poll() is None:
            agent.terminate()

    def _stop_agent(self, console: Console) -> None:
        agent, self._agent = self._agent, None
        if agent is None or agent.poll() is not None:
            return
        console.print("stopping the agent and every pod it runs...")
        agent.terminate()
        try:
            agent.wait(timeout=AGENT_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("the agent did not stop within %.0fs: killing it", AGENT_STOP_TIMEOUT_S)
            agent.kill()
            agent.wait()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # uvicorn handles the signal while it serves and re-raises it once it has stopped;
        # this handler receives that re-raise, so shutdown continues instead of dying here.
        self._signalled = True

    def run(self, console: Console) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        if self.agent:
            self._start_agent()
        try:
            self.master.serve(on_ready=lambda: self._on_ready(console), on_stopping=self._tell_agent_to_stop)
        finally:
            self._stop_agent(console)
        console.print("Sigma stopped.")
        return 0
