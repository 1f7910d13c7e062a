"""`sigma master` (the control plane alone) and `sigma up` (the embedded cluster)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from sigma.api.auth import AuthOptions

console = Console(stderr=True)


def _split_listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"--listen must be HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("master", help="run the control plane (API server, schedulers, controllers)")
    p.add_argument("--store", default="sqlite:///.sigma/state.db",
                   help="sqlite:///PATH (embedded, default) or etcd://HOST:PORT[,HOST:PORT]")
    p.add_argument("--listen", default="127.0.0.1:6443", help="HOST:PORT to serve the API on")
    p.add_argument("--no-controllers", action="store_true", help="serve the API only")
    p.add_argument("--watch-history", type=int, default=None, metavar="REVISIONS",
                   help="store revisions kept for watches to resume from (default 50000); a watch from "
                   "further back gets 410 Gone and re-lists")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="a controller timing or setting, e.g. node_grace_s=4, pod_eviction_timeout_s=10 or "
                   "p2p_source_claims=8 (repeatable)")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16",
                   help="the pod network: each Node gets a block of it as spec.podCIDR (comma-separated IPv4 CIDRs)")
    p.add_argument("--node-cidr-mask-size", type=int, default=24, help="the prefix length of each Node's podCIDR")
    p.add_argument("--service-cidr", default=None, metavar="CIDR",
                   help="the ClusterIP range of Services (default 10.96.0.0/12; its first address is the "
                   "kubernetes Service's)")
    p.add_argument("--service-node-port-range", default=None, metavar="LOW-HIGH",
                   help="the NodePort range of Services (default 30000-32767)")
    add_auth_arguments(p)
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    p.set_defaults(func=run_master)

    u = sub.add_parser("up", help="run the embedded cluster: master, a local agent and demo workloads")
    u.add_argument("--state-dir", default=".sigma", help="where the store, logs and kubeconfig live")
    u.add_argument("--port", type=int, default=6443, help="the API server's port on 127.0.0.1")
    u.add_argument("--no-demo", action="store_true", help="start without the demo workloads")
    u.add_argument("--no-agent", action="store_true", help="start the master only")
    u.add_argument("--cgroup-root", default="sigma", help="the local agent's cgroup subtree")
    u.add_argument("--store", choices=("sqlite", "etcd"), default="sqlite",
                   help="etcd: start a local etcd in the state dir (needed for --masters > 1)")
    u.add_argument("--masters", type=int, default=1, help="masters to run (on ports PORT, PORT+1, ...)")
    u.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    u.set_defaults(func=run_up)


def add_auth_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", help="CA, credentials, RBAC bindings and the audit log "
                                       "(default: the SQLite file's directory, else .sigma)")
    p.add_argument("--token-file", help='users\' bearer tokens, lines of token,user,uid,"group1,group2"')
    p.add_argument("--rbac", help="role bindings (YAML; default STATE/rbac.yaml)")
    p.add_argument("--allow-anonymous-loopback", action="store_true",
                   help="requests without credentials act as cluster-admin (loopback listeners only)")
    p.add_argument("--tls", choices=("auto", "on", "off"), default="auto",
                   help="auto: TLS on unless the listener is loopback")
    p.add_argument("--rate-limit", default="200:400", metavar="QPS[:BURST]",
                   help="requests per second per client (system:masters exempt); 0 turns it off")
    p.add_argument("--no-audit", action="store_true", help="do not write STATE/audit.log")


def auth_options(args: argparse.Namespace, host: str, default_state: Path) -> AuthOptions:
    from sigma.api.auth import AuthOptions

    qps, _, burst = str(args.rate_limit).partition(":")
    try:
        rate, bucket = float(qps), float(burst or 2 * float(qps))
    except ValueError:
        raise SystemExit(f"--rate-limit must be QPS[:BURST], got {args.rate_limit!r}") from None
    return AuthOptions(
        state_dir=Path(args.state_dir or default_state).resolve(), host=host,
        token_file=Path(args.token_file).resolve() if args.token_file else None,
        rbac_file=Path(args.rbac).resolve() if args.rbac else None,
        allow_anonymous_loopback=args.allow_anonymous_loopback,
        tls={"auto": None, "on": True, "off": False}[args.tls], rate_qps=rate, rate_burst=bucket,
        audit=not args.no_audit)


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request at INFO: on etcd that is every store call.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def run_master(args: argparse.Namespace) -> int:
    from sigma.master.controllers.podcidr import cluster_cidrs_of
    from sigma.master.process import Master

    _logging(args.verbose)
    host, port = _split_listen(args.listen)
    state = Path(".sigma")
    if args.store.startswith("sqlite:///"):
        state = Path(args.store[len("sqlite://"):]).parent
        state.mkdir(parents=True, exist_ok=True)
    from sigma.statemodes import secure_master_state

    try:
        auth = auth_options(args, host, state)
        history = {} if args.watch_history is None else {"watch_history": args.watch_history}
        store_dir = [state.resolve()] if args.store.startswith("sqlite:///") else []
        for private in dict.fromkeys([*store_dir, auth.state_dir]):
            secure_master_state(private)  # umask 077 first: the store and CA are created next
        options: dict[str, Any] = {**_options(args.option), "cluster_cidr": args.cluster_cidr,
                                   "node_cidr_mask_size": args.node_cidr_mask_size, **_service_network(args)}
        cluster_cidrs_of(options)  # overlapping or malformed blocks are refused before anything starts
        master = Master(args.store, host, port, controllers=not args.no_controllers, options=options,
                        auth=auth, **history)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    assert master.auth_setup is not None
    scheme = master.auth_setup.scheme
    master.serve(on_ready=lambda: console.print(f"sigma master serving on {scheme}://{host}:{port}"))
    return 0


def _service_network(args: argparse.Namespace) -> dict[str, str]:
    """The Master options of the service network flags (checked when the master starts)."""
    out = {}
    if args.service_cidr is not None:
        out["service_cidr"] = args.service_cidr
    if args.service_node_port_range is not None:
        out["service_node_port_range"] = args.service_node_port_range
    return out


def _options(pairs: list[str]) -> dict[str, float]:
    options: dict[str, float] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            options[name.strip()] = float(value)
        except ValueError:
            raise SystemExit(f"--option must be NAME=VALUE with a number, got {pair!r}") from None
    return options


def write_kubeconfig(path: Path, server: str, token: str | None = None, ca_file: Path | None = None) -> None:
    """A kubeconfig for ``server``: with ``token`` as the admin's credential, and the cluster
    CA when the server speaks https."""
    cluster = f"    server: {server}\n"
    if ca_file is not None and server.startswith("https://"):
        cluster += f"    certificate-authority: {ca_file}\n"
    user = f"\n    token: {token}\n" if token else " {}\n"
    text = (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: sigma\n  cluster:\n{cluster}"
        f"users:\n- name: sigma-admin\n  user:{user}"
        "contexts:\n- name: sigma\n  context:\n    cluster: sigma\n    user: sigma-admin\n    namespace: default\n"
        "current-context: sigma\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds a credential
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def admin_token(state: Path) -> str:
    """The admin's token of `sigma up` (user sigma-admin in system:masters), created on the
    first start in STATE/auth/tokens.csv and kept across restarts."""
    from sigma.api.auth.tokens import new_token, write_token_file

    path = state / "auth" / "tokens.csv"
    if path.exists():
        for line in path.read_text().splitlines():
            token, _, rest = line.partition(",")
            if rest.startswith("sigma-admin,"):
                return token
    token = new_token()
    write_token_file(path, [(token, "sigma-admin", ("system:masters",))])
    return token


def run_up(args: argparse.Namespace) -> int:
    from sigma.cli.up import EmbeddedCluster
    from sigma.statemodes import secure_master_state

    _logging(args.verbose)
    state = Path(args.state_dir).resolve()
    secure_master_state(state, holds_agent=not args.no_agent)
    if args.masters > 1 and args.store != "etcd":
        raise SystemExit("--masters > 1 needs --store etcd (SQLite belongs to one master)")
    kubeconfig = state / "kubeconfig"
    from sigma.api.auth.certs import ensure_ca

    # https on loopback too (cli/up.py): the CA is created here so the kubeconfig can name it.
    ca = ensure_ca(state / "auth")
    write_kubeconfig(kubeconfig, f"https://127.0.0.1:{args.port}", admin_token(state), ca.cert)
    os.environ.setdefault("KUBECONFIG", str(kubeconfig))
    if args.store == "etcd":
        from sigma.cli.ha import HaControlPlane

        with HaControlPlane(state, args.port, args.masters, console) as plane:
            cluster = EmbeddedCluster(state, args.port, demo=not args.no_demo, agent=not args.no_agent,
                                      cgroup_root=args.cgroup_root, store_url=plane.store_url)
            return cluster.run(console)
    cluster = EmbeddedCluster(state, args.port, demo=not args.no_demo, agent=not args.no_agent,
                              cgroup_root=args.cgroup_root)
    return cluster.run(console)
