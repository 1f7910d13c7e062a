"""`sigma agent`: the node agent, one per machine.

    sigma agent --master URL [--token-file F | --bootstrap-token-file F] [--kubeconfig PATH]
                --node-name NAME [--cpus N]
                [--memory 8Gi] [--reserved cpu=500m,memory=512Mi] [--state-dir DIR]
                [--listen HOST:PORT] [--registry HOST:PORT [--insecure-registry]]
                [--registry-mirror REGISTRY=MIRROR]... [--image-credentials CONFIG.JSON]
                [--p2p-port 10270 | --no-p2p] [--p2p-upload-mbps N] [--image-gc-budget 10G]

Tokens come from files or the environment (SIGMA_TOKEN, SIGMA_BOOTSTRAP_TOKEN), not the
command line, where `ps` shows them to every user; --token and --bootstrap-token still
work but warn.

SIGINT/SIGTERM stop the agent's loops; containers keep running and the next agent adopts
them, unless --drain-on-exit (what `sigma up` uses) asks to stop them all first. A stop not
done within --stop-timeout dumps every thread's stack to the log and exits 1 (a drain kills
its pods first): a stuck stop is seen, and never outlives its bound (sigma.agent.stopping).

Credentials, in order: --token/--token-file/$SIGMA_TOKEN; else the node credential kept in
STATE/kubeconfig by an earlier join (so a restart needs no token; --master, if given,
replaces the server it names); else a join with the bootstrap token; else --kubeconfig or
the kubectl files. With none of them the agent stops at once and says how to get a token.

Ports: --listen and --p2p-port given on the command line must be free, or the agent stops
with a message naming the flag; left at their defaults (10250, 10270) they move to a free
port when taken (another agent on this machine), which the Node and the P2P tracker publish.
Each agent has its own cgroup subtree (cgroups.agent_cgroup_root), so two agents on one
machine never touch each other's pods.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import TYPE_CHECKING

from sigma.agent.image_reference import parse_mirrors
from sigma.agent.images import parse_size
from sigma.agent.pulls import DEFAULT_P2P_PORT
from sigma.agent.stopping import DEFAULT_STOP_TIMEOUT_S
from sigma.cli.master import _split_listen
from sigma.ports import PortInUse, default_or_free, require_free

if TYPE_CHECKING:
    from sigma.agent.qos import QosOptions
    from sigma.client.http import HttpClient

DEFAULT_AGENT_PORT = 10250


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("agent", help="run the node agent: register the node and run the pods bound to it")
    p.add_argument("--master", help="API server URL (default: the kubeconfig's server)")
    p.add_argument("--token-file", help="file holding the bearer token for the API server (or $SIGMA_TOKEN)")
    p.add_argument("--token", help="the bearer token itself: visible in ps, prefer --token-file")
    p.add_argument("--kubeconfig", help="kubeconfig file to reach the master with")
    p.add_argument("--bootstrap-token-file",
                   help="join with the token in this file (sigma token create; or $SIGMA_BOOTSTRAP_TOKEN): the agent "
                        "gets its own node credential and keeps it in STATE/kubeconfig")
    p.add_argument("--bootstrap-token", help="the bootstrap token itself: visible in ps, prefer --bootstrap-token-file")
    p.add_argument("--ca-file", help="the cluster CA to verify an https master with")
    p.add_argument("--node-name", default=socket.gethostname().lower(), help="default: the hostname")
    p.add_argument("--cpus", help="CPU capacity to publish (e.g. 4 or 3500m); default: the host's")
    p.add_argument("--memory", help="memory capacity to publish (e.g. 8Gi); default: the host's")
    p.add_argument("--reserved", default="", help="kept out of allocatable, e.g. cpu=500m,memory=512Mi")
    p.add_argument("--state-dir", default="/var/lib/sigma/agent", help="container state, logs, bundles")
    p.add_argument("--listen", default=None,
                   help="HOST:PORT for /logs, /metrics, /healthz (default 0.0.0.0:10250, or a free port if another "
                        "agent has it; a port given here must be free; port 0: any free port)")
    p.add_argument("--address", help="the address the master reaches this agent on (default: found out)")
    p.add_argument("--cgroup-root", default=None,
                   help="the agent's cgroup subtree (default: sigma-NODE-HASH, one per state directory, kept in "
                        "STATE/cgroup-root)")
    p.add_argument("--image-dir", help="image store (default: $SIGMA_IMAGE_DIR or /var/lib/sigma/images)")
    images = p.add_argument_group("images", "pulls per imagePullPolicy for runc pods, P2P through the master")
    images.add_argument("--registry", help="HOST:PORT for image references that name no registry")
    images.add_argument("--insecure-registry", action="store_true",
                        help="plain HTTP to the registry (loopback registries always are)")
    images.add_argument("--registry-mirror", action="append", default=[], metavar="REGISTRY=MIRROR",
                        help="a mirror tried before REGISTRY (repeatable, in order), e.g. "
                             "docker.io=https://mirror.local")
    images.add_argument("--image-credentials", metavar="FILE",
                        help="the node's registry credentials (docker config.json), after the pods' imagePullSecrets")
    images.add_argument("--p2p-port", type=int, default=None,
                        help=f"where to serve image pieces to other agents (default {DEFAULT_P2P_PORT}, or a free "
                             "port if another agent has it; a port given here must be free; 0: any free port)")
    images.add_argument("--no-p2p", dest="p2p", action="store_false",
                        help="pull every blob from the registry, serve nothing to other agents")
    images.add_argument("--p2p-upload-mbps", type=float, default=0.0,
                        help="cap on what this node uploads to other agents, in Mb/s (0: none)")
    images.add_argument("--image-gc-budget", type=parse_size, default=0,
                        help="disk budget of the image store (e.g. 10G); least recently used images go first")
    images.add_argument("--image-gc-interval", type=float, default=300.0, help="seconds between image GC rounds")
    images.add_argument("--rootfs", choices=("overlay", "copy"), default="overlay",
                        help="a runc container's rootfs: overlayfs on the image where it mounts, or a copy")
    p.add_argument("--metrics-interval", type=float, default=5.0, help="seconds between NodeMetric reports")
    p.add_argument("--lease-interval", type=float, default=10.0, help="seconds between Lease renewals")
    p.add_argument("--resync-interval", type=float, default=1.0, help="seconds between full pod syncs")
    p.add_argument("--volume-resync-interval", type=float, default=10.0,
                   help="seconds between refreshes of running pods' ConfigMap, Secret and token volumes")
    p.add_argument("--qos-interval", type=float, default=1.0,
                   help="seconds between QoS rounds (idle, suppress, evict, resctrl)")
    p.add_argument("--prod-cpu", choices=("node", "pods"), default="node",
                   help="what batch's CPU suppression counts as prod's use: 'node' (default) everything busy on the "
                        "node outside batch, daemons included; 'pods' only the prod pods' cgroups, for nodes that "
                        "share one machine (the lab's), where the machine's other nodes are not this node's prod")
    p.add_argument("--drain-on-exit", action="store_true", help="stop every pod when the agent stops")
    p.add_argument("--stop-timeout", type=_positive_seconds, default=DEFAULT_STOP_TIMEOUT_S, metavar="SECONDS",
                   help="a stop (SIGTERM, SIGINT) not done by then dumps every thread's stack to the log and exits "
                        f"1, with --drain-on-exit killing the pods first (default {DEFAULT_STOP_TIMEOUT_S:.0f})")
    p.add_argument("--streaming-connection-idle-timeout", type=float, default=4 * 3600.0, metavar="SECONDS",
                   help="close an exec, attach or port-forward session idle this long (default 4 h, as kubelet)")
    net = p.add_argument_group("pod network", "a network namespace and an address per pod (CNI), host-gw routes")
    net.add_argument("--pod-network", action="store_true",
                     help="give pods their own network from the Node's podCIDR (else they share the host's)")
    net.add_argument("--cni-bin-dir", action="append", default=None, metavar="DIR",
                     help="where the CNI plugins are (repeatable; default /usr/lib/cni, /opt/cni/bin)")
    net.add_argument("--enable-ip-forward", action="store_true",
                     help="turn on IPv4 forwarding in the agent's network namespace (pods of other nodes)")
    services = p.add_argument_group("services", "the nftables service proxy and the cluster DNS (docs/concepts.md)")
    services.add_argument("--service-proxy", action="store_true",
                          help="program ClusterIPs and NodePorts into nftables (table ip sigma)")
    services.add_argument("--cluster-dns", action="store_true", help="serve cluster DNS on the pod gateway address")
    services.add_argument("--cluster-cidr", help="the cluster's pod addresses, e.g. 10.244.0.0/16 (masquerade)")
    services.add_argument("--cluster-domain", default="cluster.local", help="the DNS domain of Services and pods")
    services.add_argument("--cluster-dns-port", type=int, default=53,
                          help="the port the cluster DNS answers on (UDP and TCP)")
    services.add_argument("--cluster-dns-address", help="default: the first address of the Node's podCIDR")
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    p.set_defaults(func=run_agent)


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def _client(args: argparse.Namespace) -> HttpClient:
    """The agent's connection to the master, with the first credential of the module's list."""
    from pathlib import Path

    from sigma.client.http import HttpClient
    from sigma.client.join import anonymous_refused, joined_client, no_credential_message, secret_from
    from sigma.client.kubeconfig import KubeconfigNotFound, kubeconfig_paths, load_kubeconfig

    state_dir = Path(args.state_dir)
    bootstrap = secret_from(args.bootstrap_token, args.bootstrap_token_file, "SIGMA_BOOTSTRAP_TOKEN",
                            "--bootstrap-token")
    token = secret_from(args.token, args.token_file, "SIGMA_TOKEN", "--token")
    stored = (state_dir / "kubeconfig").exists()
    if token and args.master:
        return HttpClient(args.master, token=token, verify=args.ca_file or True)
    if not token and ((bootstrap and args.master) or (stored and not args.kubeconfig)):
        # A restart: the node credential of the first join, no token needed (--master, if
        # given, is where the master is now). A first start: the join.
        return joined_client(args.master, bootstrap, args.node_name, state_dir, args.ca_file)
    if args.master:
        # No credential at all: fine for a master that lets anonymous loopback clients in
        # (tests, benchmarks); any other master would answer every request 401 for ever.
        if anonymous_refused(args.master, args.ca_file):
            raise ValueError(no_credential_message(state_dir, args.node_name))
        return HttpClient(args.master, token=token, verify=args.ca_file or True)
    try:
        config = load_kubeconfig(kubeconfig_paths(args.kubeconfig))
    except KubeconfigNotFound:
        raise ValueError(f"pass --master URL (and a bootstrap token to join with), or --kubeconfig PATH; "
                         f"{no_credential_message(state_dir, args.node_name)}") from None
    if token:
        import dataclasses

        config = dataclasses.replace(config, token=token)
    return HttpClient.from_config(config)


def _ports(args: argparse.Namespace) -> tuple[str, int, int]:
    """The agent server's host and port, and the P2P port: a port asked for must be free
    (PortInUse otherwise); a default one that is taken becomes a free one."""
    log = logging.getLogger("sigma.agent")
    if args.listen is None:
        host, port = "0.0.0.0", default_or_free("0.0.0.0", DEFAULT_AGENT_PORT)
        if port != DEFAULT_AGENT_PORT:
            log.warning("port %d is taken (another agent on this machine?): serving /logs and /metrics on %d "
                        "(--listen to choose)", DEFAULT_AGENT_PORT, port)
    else:
        host, port = _split_listen(args.listen)
        require_free(host, port, "--listen", "(HOST:PORT; port 0 takes any free port)")
    p2p_port = 0
    if args.p2p:
        if args.p2p_port is None:
            p2p_port = default_or_free(host, DEFAULT_P2P_PORT)
            if p2p_port != DEFAULT_P2P_PORT:
                log.warning("P2P port %d is taken (another agent on this machine?): serving image pieces on %d "
                            "(--p2p-port to choose)", DEFAULT_P2P_PORT, p2p_port)
        else:
            p2p_port = args.p2p_port
            require_free(host, p2p_port, "--p2p-port", "(0 takes any free port; --no-p2p serves none)")
    return host, port, p2p_port


def qos_options(args: argparse.Namespace) -> QosOptions:
    from sigma.agent.qos import QosOptions
    return QosOptions(interval=args.qos_interval, count_system_cpu=args.prod_cpu == "node")


def run_agent(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sigma.agent.agent import Agent, AgentOptions, NodeUnauthorized
    from sigma.agent.cgroups import agent_cgroup_root
    from sigma.agent.images import DEFAULT_ROOT
    from sigma.agent.podnet.hostlock import PodNetworkInUse, hold_pod_network
    from sigma.agent.podnet.network import DEFAULT_CNI_BIN_DIRS
    from sigma.agent.pulls import ImageOptions
    from sigma.agent.servicenet import ServiceNetOptions
    from sigma.agent.stopping import StopDeadline, stop_on_signals
    from sigma.api.errors import ApiError
    from sigma.statemodes import secure_state_dir

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the log
    try:
        host, port, p2p_port = _ports(args)
        secure_state_dir(Path(args.state_dir))
        # Held while the agent runs: one pod network per network namespace (podnet/hostlock.py).
        podnet_lock = hold_pod_network(args.state_dir) if args.pod_network else None
        cgroup_root = agent_cgroup_root(args.cgroup_root, args.node_name, args.state_dir)
        options = AgentOptions(
            cpus=args.cpus, memory=args.memory, reserved=args.reserved, host=host, port=port,
            address=args.address, cgroup_root=cgroup_root, image_dir=args.image_dir or DEFAULT_ROOT,
            resync_interval=args.resync_interval, metrics_interval=args.metrics_interval,
            lease_interval=args.lease_interval, drain_on_exit=args.drain_on_exit,
            streaming_idle_timeout_s=args.streaming_connection_idle_timeout,
            pod_network=args.pod_network, enable_ip_forward=args.enable_ip_forward,
            cni_bin_dirs=tuple(args.cni_bin_dir or DEFAULT_CNI_BIN_DIRS),
            qos=qos_options(args),
            images=ImageOptions(registry=args.registry, insecure_registry=args.insecure_registry, p2p=args.p2p,
                                mirrors=parse_mirrors(args.registry_mirror), credentials_file=args.image_credentials,
                                p2p_port=p2p_port, p2p_upload_rate=args.p2p_upload_mbps * 1e6 / 8,
                                gc_budget=args.image_gc_budget, gc_interval=args.image_gc_interval,
                                overlay=args.rootfs == "overlay"),
            services=ServiceNetOptions(proxy=args.service_proxy, dns=args.cluster_dns, cluster_cidr=args.cluster_cidr,
                                       cluster_domain=args.cluster_domain, dns_port=args.cluster_dns_port,
                                       dns_address=args.cluster_dns_address),
            volume_resync_interval=args.volume_resync_interval,
        )
        agent = Agent(_client(args), args.node_name, args.state_dir, options)
    except (ValueError, OSError, ApiError, PortInUse, PodNetworkInUse) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    # A stop that hangs dumps every thread's stack and exits 1 (with --drain-on-exit, its
    # pods killed first); without a drain the pods keep running for the next agent.
    stop_on_signals(agent.stop, StopDeadline(args.stop_timeout,
                                             last_resort=agent.kill_pods if args.drain_on_exit else None))
    try:
        agent.run()
    except NodeUnauthorized as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        if podnet_lock is not None:
            os.close(podnet_lock)
    return 0
