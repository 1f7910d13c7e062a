"""The embedded cluster of `sigma up`: the master in this process, a local agent beside it,
and the demo workloads. Ctrl-C stops everything and leaves nothing running.

The agent is a child process (`sigma agent --drain-on-exit`) rather than a thread: it gets
its own signal handling and log, and the kernel tells it when we die (PR_SET_PDEATHSIG),
so even a `kill -9` of `sigma up` ends with the agent stopping every pod it started.
Shutdown order: the API server stops first (uvicorn handles SIGINT/SIGTERM), then the agent
is told to stop and drains its pods (node-local work, no API needed), then we exit.

Several `sigma up` on one machine, each with its own --state-dir, never meet: the state
directory is locked (sigma.statelock), the API port is the one asked for (refused if taken)
or 6443 or a free one, the agent's ports are free ones, the demo's metrics port is a free
one, and the agent's cgroup subtree is its state directory's own (cgroups.agent_cgroup_root).
"""

from __future__ import annotations

import ctypes
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.markup import escape

from sigma.agent.cgroups import agent_cgroup_root
from sigma.api.auth import AuthOptions, is_loopback
from sigma.api.auth.tokens import create_bootstrap_token
from sigma.master.process import Master
from sigma.ports import is_wildcard, primary_address, url_host
from sigma.ui import once_login_url

log = logging.getLogger("sigma.up")

PR_SET_PDEATHSIG = 1
AGENT_STOP_TIMEOUT_S = 25.0
AGENT_JOIN_TTL_S = 600.0  # long enough for a slow start; the agent keeps its node credential


def _die_with_parent() -> None:
    # Runs in the forked child before exec: SIGTERM when the parent (thread) dies.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def client_host(host: str) -> str:
    """Where clients on this machine reach a listener on ``host``: the host itself, or
    loopback for a wildcard listener."""
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    return "::1" if host == "::" else host


def sigma_command() -> str:
    """How to run this `sigma` from a shell: "sigma" when that is what PATH finds, else the
    console script's absolute path (a virtualenv's bin is often not on PATH), else
    `python -m sigma` with this interpreter."""
    script = Path(sys.executable).parent / "sigma"
    found = shutil.which("sigma")
    if found and script.is_file() and os.path.samefile(found, script):
        return "sigma"
    if script.is_file() and os.access(script, os.X_OK):
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m sigma"


class EmbeddedCluster:
    def __init__(self, state: Path, port: int, demo: bool = True, agent: bool = True,
                 cgroup_root: str | None = None, node_name: str | None = None, store_url: str | None = None,
                 host: str = "127.0.0.1", listener: socket.socket | None = None, pod_network: bool = False) -> None:
        self.state = state
        self.pod_network = pod_network  # sigma.cli.upnet: an address per pod, Services, cluster DNS
        self.port = port
        self.host = host.strip("[]")
        self.listener = listener  # bound by `sigma up` (cli/master.py): a taken port was refused there
        self.demo = demo
        self.agent = agent
        self.node_name = node_name or socket.gethostname().lower()
        # Each state directory its own cgroup subtree (cgroups.agent_cgroup_root): two `sigma up`
        # on one machine never remove each other's pods. The agent records it; we only ask.
        self.cgroup_root = agent_cgroup_root(cgroup_root, self.node_name, str(state / "agent"), record=False)
        # The URL this machine's clients (the kubeconfig, the agent) use.
        self.local_url = f"https://{url_host(client_host(self.host))}:{port}"
        # store_url: etcd when `sigma up --store etcd` runs several masters (cli/ha.py).
        # No anonymous access: the kubeconfig carries the admin's token (cli/master.py) and the
        # agent joins with a bootstrap token, getting its own node credential. TLS even on
        # loopback: kubectl does not send a bearer token over plain http. The serving
        # certificate names the --listen address (every address of the machine for 0.0.0.0).
        auth = AuthOptions(state_dir=state, host=self.host, token_file=state / "auth" / "tokens.csv", tls=True)
        self.master = Master(store_url or f"sqlite://{state / 'state.db'}", self.host, port, auth=auth)
        self._agent: subprocess.Popen[bytes] | None = None
        self._signalled = False
        self._stop_demo = threading.Event()  # the demo's batch queue runs until the master stops

    @property
    def public_url(self) -> str:
        """The URL other machines use: the --listen address, or this machine's main address
        when it listens on all of them."""
        host = primary_address() if is_wildcard(self.host) else self.host
        return f"https://{url_host(host)}:{self.port}"

    def _on_ready(self, console: Console) -> None:
        kubeconfig = shlex.quote(str(self.state / "kubeconfig"))
        sigma = sigma_command()

        def say(line: str) -> None:
            console.print(line, soft_wrap=True, markup=False, highlight=False)  # never break a command in two

        metrics_port = None
        if self.demo:
            from sigma.client.local import LocalClient
            from sigma.demo.batchqueue import BatchQueue
            from sigma.demo.cluster import apply_demo

            metrics_port = apply_demo(self.master.registry, pod_network=self.pod_network)
            BatchQueue(LocalClient(self.master.registry)).start(self._stop_demo)
        everywhere = " (listening on every address of this machine)" if is_wildcard(self.host) else ""
        console.print(f"[bold green]Sigma is up[/] on {escape(self.public_url)}{everywhere}", soft_wrap=True)
        if self._agent is not None:
            say(f"  node:       {self.node_name} (agent pid {self._agent.pid}, state in {self.state / 'agent'}, "
                f"cgroups {self.cgroup_root})")
        say(f"  dashboard:  {once_login_url(self.master.auth_setup, self.public_url)}")
        say(f"  kubeconfig: {self.state / 'kubeconfig'}")
        say(f"  try:        kubectl --kubeconfig {kubeconfig} get pods -A -o wide")
        say(f"              {sigma} get pods -A --kubeconfig {kubeconfig}")
        if self.demo:
            # What to watch: the compressed day (four minutes) and its rush, a minute in.
            say(f"  watch:      kubectl --kubeconfig {kubeconfig} get predictivescalers -w   (a day every 4 min: "
                "load, forecast and replicas follow it, and rise before the rush 1 min in)")
            say(f"              kubectl --kubeconfig {kubeconfig} get deploy demo-web -w")
            say(f"              kubectl --kubeconfig {kubeconfig} get batchjobs -w   (demo-batch-N: batch keeps "
                "coming, squeezed in the rush, back after it)")
            if self.pod_network:
                from sigma.demo.cluster import demo_service_ip

                say(f"              curl http://{demo_service_ip(self.master.registry)}/   (Service demo-web: its "
                    "ready replicas answer in turn)")
                say(f"              kubectl --kubeconfig {kubeconfig} get svc,endpointslices")
                say(f"              kubectl --kubeconfig {kubeconfig} get pods -l app=demo-load   (then `logs` of it: "
                    "the day's requests through the Service, and the replicas that answered)")
            else:
                say(f"  demo load:  http://127.0.0.1:{metrics_port}/metrics (what demo-web's PredictiveScaler "
                    "reads)")
        if sigma != "sigma":
            bin_dir = shlex.quote(str(Path(sys.executable).parent))
            say(f"  sigma:      not on PATH here; to type just `sigma`: export PATH={bin_dir}:$PATH")
        if not is_loopback(self.host):
            say(f"  add a node: {sigma} token create --state-dir {shlex.quote(str(self.state))} > join-token; copy it "
                f"and {self.state / 'auth' / 'ca.crt'} to the machine, then there: sigma agent --master "
                f"{self.public_url} --ca-file ca.crt --bootstrap-token-file join-token (docs/operations.md)")
        say("  stop:       Ctrl-C")

    def _start_agent(self) -> None:
        """Started before the API server (in the main thread, which PDEATHSIG is tied to);
        it retries registering until the server answers."""
        # A single-use token, in the agent's environment rather than its command line (which
        # `ps` shows to everyone). Once joined, the agent's kubeconfig is used and the token,
        # if unused, expires.
        join_token = create_bootstrap_token(self.state, ttl_s=AGENT_JOIN_TTL_S)
        env = {**os.environ, "SIGMA_BOOTSTRAP_TOKEN": join_token}
        # The agent's own server on a free port (two `sigma up` on one machine), on loopback
        # unless the cluster is open to other machines, whose peers fetch image pieces from it.
        if is_loopback(self.host):
            listen, address = "127.0.0.1:0", "127.0.0.1"
        elif is_wildcard(self.host):
            listen, address = f"{url_host(self.host)}:0", primary_address()
        else:
            listen, address = f"{url_host(self.host)}:0", self.host
        cmd = [sys.executable, "-m", "sigma", "agent", "--master", self.local_url,
               "--ca-file", str(self.state / "auth" / "ca.crt"),
               "--node-name", self.node_name, "--state-dir", str(self.state / "agent"),
               "--listen", listen, "--address", address, "--cgroup-root", self.cgroup_root,
               "--drain-on-exit"]
        if self.pod_network:
            from sigma.master.controllers.podcidr import DEFAULT_CLUSTER_CIDR

            # Forwarding on: a pod's request to a ClusterIP may come back out of the bridge
            # to a replica on this node, as on every Kubernetes node.
            cmd += ["--pod-network", "--enable-ip-forward", "--service-proxy", "--cluster-dns",
                    "--cluster-cidr", DEFAULT_CLUSTER_CIDR]
        # Its own session: a terminal's Ctrl-C reaches us, and we stop the agent in order.
        # umask 022: the agent's pods inherit it (statemodes.py); ours is 077.
        self._agent = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True, env=env,
                                       umask=0o022, preexec_fn=_die_with_parent)

    def _tell_agent_to_stop(self) -> None:
        """SIGTERM to the agent as the master begins to stop: it drains its pods (each within
        its own grace period; node-local work) while the master winds down."""
        self._stop_demo.set()  # before the store closes under the demo's batch queue
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
            self.master.serve(on_ready=lambda: self._on_ready(console), on_stopping=self._tell_agent_to_stop,
                              sockets=[self.listener] if self.listener is not None else None)
        finally:
            self._stop_demo.set()
            self._stop_agent(console)
        console.print("Sigma stopped.")
        return 0
