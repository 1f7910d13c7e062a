"""`sigma agent`: the node agent, one per machine.

    sigma agent --master URL [--token-file F | --bootstrap-token-file F] [--kubeconfig PATH]
                --node-name NAME [--cpus N]
                [--memory 8Gi] [--reserved cpu=500m,memory=512Mi] [--state-dir DIR]
                [--listen HOST:PORT] [--registry HOST:PORT [--insecure-registry]]
                [--p2p-port 10270 | --no-p2p] [--p2p-upload-mbps N] [--image-gc-budget 10G]

Tokens come from files or the environment (SIGMA_TOKEN, SIGMA_BOOTSTRAP_TOKEN), not the
command line, where `ps` shows them to every user; --token and --bootstrap-token still
work but warn.

SIGINT/SIGTERM stop the agent's loops; containers keep running and the next agent adopts
them, unless --drain-on-exit (what `sigma up` uses) asks to stop them all first.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from types import FrameType
from typing import TYPE_CHECKING

from sigma.agent.images import parse_size
from sigma.agent.pulls import DEFAULT_P2P_PORT
from sigma.cli.master import _split_listen

if TYPE_CHECKING:
    from sigma.client.http import HttpClient


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
    p.add_argument("--listen", default="0.0.0.0:10250", help="HOST:PORT for /logs, /metrics, /healthz")
    p.add_argument("--address", help="the address the master reaches this agent on (default: found out)")
    p.add_argument("--cgroup-root", default="sigma", help="the agent's cgroup subtree")
    p.add_argument("--image-dir", help="image store (default: $SIGMA_IMAGE_DIR or /var/lib/sigma/images)")
    images = p.add_argument_group("images", "pulls per imagePullPolicy for runc pods, P2P through the master")
    images.add_argument("--registry", help="HOST:PORT for image references that name no registry")
    images.add_argument("--insecure-registry", action="store_true",
                        help="plain HTTP to the registry (loopback registries always are)")
    images.add_argument("--p2p-port", type=int, default=DEFAULT_P2P_PORT,
                        help="where to serve image pieces to other agents (0: any free port)")
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
    p.add_argument("--qos-interval", type=float, default=1.0,
                   help="seconds between QoS rounds (idle, suppress, evict, resctrl)")
    p.add_argument("--drain-on-exit", action="store_true", help="stop every pod when the agent stops")
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


def _client(args: argparse.Namespace) -> HttpClient:
    from pathlib import Path

    from sigma.client.http import HttpClient
    from sigma.client.join import joined_client, secret_from

    bootstrap = secret_from(args.bootstrap_token, args.bootstrap_token_file, "SIGMA_BOOTSTRAP_TOKEN",
                            "--bootstrap-token")
    token = secret_from(args.token, args.token_file, "SIGMA_TOKEN", "--token")
    if args.master and not token and (bootstrap or (Path(args.state_dir) / "kubeconfig").exists()):
        return joined_client(args.master, bootstrap, args.node_name, Path(args.state_dir), args.ca_file)
    if args.master:
        return HttpClient(args.master, token=token, verify=args.ca_file or True)
    from sigma.cli.common import kubeconfig_path

    path = kubeconfig_path(args.kubeconfig)
    if path is None:
        raise SystemExit("error: pass --master URL or --kubeconfig PATH")
    return HttpClient.from_kubeconfig(path)


def run_agent(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sigma.agent.agent import Agent, AgentOptions
    from sigma.agent.images import DEFAULT_ROOT
    from sigma.agent.podnet.network import DEFAULT_CNI_BIN_DIRS
    from sigma.agent.pulls import ImageOptions
    from sigma.agent.qos import QosOptions
    from sigma.agent.servicenet import ServiceNetOptions
    from sigma.api.errors import ApiError
    from sigma.statemodes import secure_state_dir

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the log
    host, port = _split_listen(args.listen)
    options = AgentOptions(
        cpus=args.cpus, memory=args.memory, reserved=args.reserved, host=host, port=port,
        address=args.address, cgroup_root=args.cgroup_root, image_dir=args.image_dir or DEFAULT_ROOT,
        resync_interval=args.resync_interval, metrics_interval=args.metrics_interval,
        lease_interval=args.lease_interval, drain_on_exit=args.drain_on_exit,
        pod_network=args.pod_network, enable_ip_forward=args.enable_ip_forward,
        cni_bin_dirs=tuple(args.cni_bin_dir or DEFAULT_CNI_BIN_DIRS),
        qos=QosOptions(interval=args.qos_interval),
        images=ImageOptions(registry=args.registry, insecure_registry=args.insecure_registry, p2p=args.p2p,
                            p2p_port=args.p2p_port, p2p_upload_rate=args.p2p_upload_mbps * 1e6 / 8,
                            gc_budget=args.image_gc_budget, gc_interval=args.image_gc_interval,
                            overlay=args.rootfs == "overlay"),
        services=ServiceNetOptions(proxy=args.service_proxy, dns=args.cluster_dns, cluster_cidr=args.cluster_cidr,
                                   cluster_domain=args.cluster_domain, dns_port=args.cluster_dns_port,
                                   dns_address=args.cluster_dns_address),
    )
    try:
        secure_state_dir(Path(args.state_dir))
        agent = Agent(_client(args), args.node_name, args.state_dir, options)
    except (ValueError, OSError, ApiError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("sigma.agent").info("%s: stopping", signal.Signals(signum).name)
        agent.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    agent.run()
    return 0
