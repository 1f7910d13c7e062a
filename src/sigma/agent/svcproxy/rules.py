"""Pure: service ports -> Sigma's nftables table, as a whole or as a change to the last one.

``build_ruleset`` makes a ``Ruleset``: a fixed part (the base chains, helper chains and map
declarations, which depend only on the node's configuration) and the parts that follow the
Services (map elements, mostly: the endpoints are data picked by a shared spread chain; the
chains and affinity sets of the ports that keep their own). Two renderings:

- ``render_full``: ``table ip sigma {}; delete table ip sigma; table ip sigma {...}`` in one
  ``nft -f`` transaction: the table is replaced atomically, and the first run (no table yet)
  works because the empty declaration creates what the delete removes;
- partial syncs (svcproxy.patch): only the changed Services' chains and elements, also one
  transaction. kube-proxy does the same: rewriting tens of thousands of chains for one
  endpoint that turned not-ready costs seconds; the change alone costs milliseconds, and
  as elements only (no rule) about one.

Chain names read as the objects they come from (``svc-NS/NAME/tcp/PORTNAME``,
``ext-NS/NAME/tcp/PORTNAME`` for a NodePort), which is what ``nft list table ip sigma`` shows.
Everything comes in a fixed order (Services by namespace and name, their ports and endpoints
sorted): the same input gives the same text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sigma.agent.svcproxy.model import Endpoint, ServicePort

TABLE = "sigma"
FAMILY = "ip"
MASQ_MARK = "0x00004000"  # Kubernetes' masquerade bit (14), kept in Sigma's own table
SERVICE_IPS, SERVICE_NODEPORTS = "service-ips", "service-nodeports"
NO_ENDPOINT_SERVICES, NO_ENDPOINT_NODEPORTS = "no-endpoint-services", "no-endpoint-nodeports"
PROTOCOLS = ("tcp", "udp", "sctp")
HAIRPIN = "hairpin"  # a set: every endpoint address twice, "IP . IP"
CLUSTER_IPS = "cluster-ips"  # a set: every address a Service answers on
SETS = (HAIRPIN, CLUSTER_IPS)  # elements without a verdict; shared by several ports, never a clash
MAP_TYPES = {
    HAIRPIN: "type ipv4_addr . ipv4_addr",
    CLUSTER_IPS: "type ipv4_addr",
    SERVICE_IPS: "type ipv4_addr . inet_proto . inet_service : verdict",
    SERVICE_NODEPORTS: "type inet_proto . inet_service : verdict",
    NO_ENDPOINT_SERVICES: "type ipv4_addr . inet_proto . inet_service : verdict",
    NO_ENDPOINT_NODEPORTS: "type inet_proto . inet_service : verdict",
}


def service_endpoints(protocol: str) -> str:
    """The endpoints as data, one map per protocol (a field less in every key to write):
    "CLUSTERIP . PORT . I" -> the i-th endpoint's "IP . PORT", picked by ``numgen random
    mod N`` in a spread chain."""
    return f"service-endpoints-{protocol}"


def nodeport_endpoints(protocol: str) -> str:
    """As ``service_endpoints``, keyed "NODEPORT . I"."""
    return f"nodeport-endpoints-{protocol}"


# typeof: the key ends in numgen's own (host byte order) integer, which no named type has.
for _protocol in PROTOCOLS:
    MAP_TYPES[service_endpoints(_protocol)] = "typeof ip daddr . th dport . numgen random mod 1 : ip daddr . th dport"
    MAP_TYPES[nodeport_endpoints(_protocol)] = "typeof th dport . numgen random mod 1 : ip daddr . th dport"
SPREAD, NODEPORT_SPREAD = "spread-", "nodeport-spread-"  # + PROTO-N: shared by every port with N endpoints
# The spread chains are part of the fixed table, for up to this many endpoints: a port with
# more keeps a chain of its own with the endpoints inline. They are never added later: nft
# 1.0.6 refuses a rule that reads the endpoints map once that map comes from the kernel
# ("conflicting protocols specified: ip vs. th", its typeof ``th dport`` read back).
MAX_SPREAD = 32


@dataclass(frozen=True)
class NodeConfig:
    # Pod addresses of the whole cluster: traffic to a ClusterIP from outside it is
    # masqueraded (replies must come back through this node), and with masquerade_egress
    # pod traffic leaving it is. None: neither (no way to tell a pod from the outside).
    cluster_cidr: str | None = None
    masquerade_egress: bool = True
    node_name: str = ""  # this node: its endpoints are the Local traffic policies' ones


@dataclass
class Ruleset:
    fixed: str  # declarations and base chains: the same for the same NodeConfig
    sets: dict[str, int] = field(default_factory=dict)  # affinity set -> timeout seconds
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)  # in dependency order
    maps: dict[str, dict[str, str]] = field(default_factory=lambda: {m: {} for m in MAP_TYPES})
    skipped: list[str] = field(default_factory=list)  # service ports left out, and why
    left_out: set[str] = field(default_factory=set)  # the Services (NS/NAME) of those


def service_chain(p: ServicePort) -> str:
    return f"svc-{p.key}"


def external_chain(p: ServicePort) -> str:
    return f"ext-{p.key}"


def affinity_set(p: ServicePort, ep: Endpoint) -> str:
    return f"aff-{p.key}__{ep.ip}/{ep.port}"


def fixed_part(cfg: NodeConfig) -> str:
    """The table's skeleton (inside ``table ip sigma { ... }``)."""
    maps = [f"\t{'set' if name in SETS else 'map'} {name} {{ {kind}; }}" for name, kind in MAP_TYPES.items()]
    egress = []
    if cfg.cluster_cidr and cfg.masquerade_egress:
        # Pods reaching anything outside the cluster's pod addresses leave as the node.
        egress = [f"\t\tip saddr {cfg.cluster_cidr} ip daddr != {cfg.cluster_cidr} masquerade fully-random"]
    outside = []
    if cfg.cluster_cidr:
        # To a Service from outside the pod network: the reply must come back through this
        # node to be un-NATed. One rule over the set of service addresses, not one per Service.
        outside = [f"\t\tip daddr @{CLUSTER_IPS} ip saddr != {cfg.cluster_cidr} jump mark-for-masquerade"]
    chains = {
        "mark-for-masquerade": [f"\t\tmeta mark set meta mark | {MASQ_MARK}"],
        "masquerading": [f"\t\tmeta mark & {MASQ_MARK} == 0 return",
                         f"\t\tmeta mark set meta mark ^ {MASQ_MARK}",
                         "\t\tmasquerade fully-random"],
        # kube-proxy's answer for a service without endpoints: refused at once, never a hang.
        "reject-chain": ["\t\tmeta l4proto tcp reject with tcp reset", "\t\treject"],
        "services": [*outside,
                     f"\t\tip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}",
                     f"\t\tfib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport "
                     f"vmap @{SERVICE_NODEPORTS}"],
        "service-endpoints-check": [
            f"\t\tip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}",
            f"\t\tfib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}"],
        "pod-egress": egress,
        "filter-input": ["\t\ttype filter hook input priority -110; policy accept;",
                         "\t\tct state new jump service-endpoints-check"],
        "filter-forward": ["\t\ttype filter hook forward priority -110; policy accept;",
                           "\t\tct state new jump service-endpoints-check"],
        "filter-output": ["\t\ttype filter hook output priority -110; policy accept;",
                          "\t\tct state new jump service-endpoints-check"],
        "nat-prerouting": ["\t\ttype nat hook prerouting priority dstnat; policy accept;", "\t\tjump services"],
        "nat-output": ["\t\ttype nat hook output priority -100; policy accept;", "\t\tjump services"],
        "nat-postrouting": ["\t\ttype nat hook postrouting priority srcnat; policy accept;",
                            # Hairpin: an endpoint that reached itself through its service
                            # must see the reply come from the service, so it goes out as the node.
                            f"\t\tct status dnat ip saddr . ip daddr @{HAIRPIN} masquerade fully-random",
                            "\t\tjump masquerading", "\t\tjump pod-egress"],
    }
    for protocol in PROTOCOLS:
        for n in range(1, MAX_SPREAD + 1):
            for name, rules in (spread_chain(protocol, n), nodeport_spread_chain(protocol, n)):
                chains[name] = [f"\t\t{r}" for r in rules]
    body = [f"\tchain {name} {{\n" + "".join(r + "\n" for r in rules) + "\t}" for name, rules in chains.items()]
    return "\n".join(maps + body)


def spread_chain(protocol: str, n: int) -> tuple[str, tuple[str, ...]]:
    """ClusterIP traffic of a ``protocol`` port with ``n`` endpoints: the i-th of them, i
    uniform in [0, n), from the endpoints map under the packet's own address and port."""
    return (f"{SPREAD}{protocol}-{n}",
            (f"meta l4proto {protocol} dnat ip to ip daddr . th dport . numgen random mod {n} "
             f"map @{service_endpoints(protocol)}",))


def nodeport_spread_chain(protocol: str, n: int) -> tuple[str, tuple[str, ...]]:
    """NodePort traffic (Cluster policy) of a ``protocol`` port with ``n`` endpoints:
    masqueraded (replies come back through this node), then as ``spread_chain``."""
    return (f"{NODEPORT_SPREAD}{protocol}-{n}",
            ("jump mark-for-masquerade",
             f"meta l4proto {protocol} dnat ip to th dport . numgen random mod {n} "
             f"map @{nodeport_endpoints(protocol)}"))


def _dnat(p: ServicePort, ep: Endpoint) -> str:
    return f"meta l4proto {p.protocol} dnat to {ep.ip}:{ep.port}"


def _service_rules(p: ServicePort, cfg: NodeConfig, endpoints: tuple[Endpoint, ...] | None = None) -> tuple[str, ...]:
    """One chain per service port, the endpoints inline. Spread: rule i takes the connection
    with probability 1/(N-i) (iptables' statistic cascade), which is uniform over the N and
    needs no anonymous verdict map per service: the kernel names each anonymous set by
    scanning the table's sets, so 5,000 of them made a full load quadratic (seconds).
    ``endpoints``: a subset (this node's, for a Local policy); none left drops, as kube-proxy."""
    endpoints = p.endpoints if endpoints is None else endpoints
    if not endpoints:
        return ("drop",)
    rules = []
    n = len(endpoints)
    if p.affinity_timeout is not None:
        for ep in endpoints:  # a client seen within the timeout goes back to its endpoint
            aff = affinity_set(p, ep)
            rules.append(f"ip saddr @{aff} update @{aff} {{ ip saddr }} {_dnat(p, ep)}")
    for i, ep in enumerate(endpoints):
        pick = f"numgen random mod {n - i} 0 " if i < n - 1 else ""
        remember = f"update @{affinity_set(p, ep)} {{ ip saddr }} " if p.affinity_timeout is not None else ""
        rules.append(f"{pick}{remember}{_dnat(p, ep)}")
    return tuple(rules)


def local_chain(p: ServicePort) -> str:
    return f"loc-{p.key}"


def _external_rules(p: ServicePort, cfg: NodeConfig) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The NodePort's chains. Cluster policy: masquerade (replies come back through this
    node) and any endpoint. Local policy: this node's endpoints only, the client's address
    kept, dropped when the node has none; pods of the cluster still reach every endpoint
    (kube-proxy's short-circuit for traffic that never left the cluster)."""
    if p.external_local is None:
        return ((external_chain(p), ("jump mark-for-masquerade", f"goto {service_chain(p)}")),)
    from_pods = (f"ip saddr {cfg.cluster_cidr} goto {service_chain(p)}",) if cfg.cluster_cidr else ()
    return ((local_chain(p), _service_rules(p, cfg, p.external_local)),
            (external_chain(p), (*from_pods, f"goto {local_chain(p)}")))


@dataclass(frozen=True)
class Fragment:
    """What one Service adds to the table: made once per change of that Service or its
    slices, merged with the others' on every sync (the incremental path rebuilds one)."""
    chains: tuple[tuple[str, tuple[str, ...]], ...] = ()
    elements: tuple[tuple[str, str, str], ...] = ()  # (map or set, key, verdict or "")
    sets: tuple[tuple[str, int], ...] = ()  # affinity set, timeout
    service: str = ""  # NS/NAME, for the log


def _data_port(p: ServicePort, endpoints: tuple[Endpoint, ...], keys: list[str], node_key: str | None,
               elements: list[tuple[str, str, str]]) -> None:
    """A port whose endpoints are map elements: one endpoint more or less is a few element
    changes, never a rule. A rule makes nft read every chain of the table first and, with a
    ``dnat``, the kernel validate every chain again; the elements' table keeps few chains,
    and the one verdict element that changes (``goto spread-PROTO-N``, when N does) leads the
    validation only through one-rule spread chains."""
    n = len(endpoints)
    # None left: internalTrafficPolicy Local and none on this node; dropped, as kube-proxy does.
    verdict = f"goto {SPREAD}{p.protocol}-{n}" if n else "drop"
    elements += [(SERVICE_IPS, k, verdict) for k in keys]
    targets = [f"{ep.ip} . {ep.port}" for ep in endpoints]
    by_address = service_endpoints(p.protocol)
    elements += [(by_address, f"{ip} . {p.port} . {i}", t) for ip in p.cluster_ips for i, t in enumerate(targets)]
    if node_key:
        elements.append((SERVICE_NODEPORTS, node_key, f"goto {NODEPORT_SPREAD}{p.protocol}-{n}" if n else "drop"))
        by_node_port = nodeport_endpoints(p.protocol)
        elements += [(by_node_port, f"{p.node_port} . {i}", t) for i, t in enumerate(targets)]


def service_fragment(ports: list[ServicePort], cfg: NodeConfig) -> Fragment:
    chains: list[tuple[str, tuple[str, ...]]] = []
    elements: list[tuple[str, str, str]] = []
    sets: list[tuple[str, int]] = []
    seen: set[str] = set()
    for p in sorted(ports, key=lambda p: p.key):
        if p.key in seen:  # two ports of one Service with one name: validation prevents it
            continue
        seen.add(p.key)
        keys = [f"{ip} . {p.protocol} . {p.port}" for ip in p.cluster_ips]
        node_key = f"{p.protocol} . {p.node_port}" if p.node_port is not None else None
        if not p.endpoints:
            elements += [(NO_ENDPOINT_SERVICES, k, "goto reject-chain") for k in keys]
            if node_key:
                elements.append((NO_ENDPOINT_NODEPORTS, node_key, "goto reject-chain"))
            continue
        elements += [(CLUSTER_IPS, ip, "") for ip in p.cluster_ips]
        elements += [(HAIRPIN, f"{ep.ip} . {ep.ip}", "") for ep in p.endpoints]
        spread = p.endpoints if p.internal_local is None else p.internal_local
        if p.affinity_timeout is None and p.external_local is None and len(spread) <= MAX_SPREAD:
            _data_port(p, spread, keys, node_key, elements)
            continue
        # ClientIP affinity, the Local NodePort policy (two endpoint lists) and more endpoints
        # than the spread chains cover: a chain of the port's own, the endpoints inline.
        chains.append((service_chain(p), _service_rules(p, cfg, p.internal_local)))
        elements += [(SERVICE_IPS, k, f"goto {service_chain(p)}") for k in keys]
        if node_key:
            chains += _external_rules(p, cfg)
            elements.append((SERVICE_NODEPORTS, node_key, f"goto {external_chain(p)}"))
        if p.affinity_timeout is not None:
            sets += [(affinity_set(p, ep), p.affinity_timeout) for ep in p.endpoints]
    service = f"{ports[0].namespace}/{ports[0].name}" if ports else ""
    return Fragment(tuple(chains), tuple(elements), tuple(sets), service)


def merge(fragments: list[Fragment], cfg: NodeConfig) -> Ruleset:
    """The table from every Service's fragment (in the order given: keep it sorted). A key
    or chain a fragment shares with an earlier one (two Services claiming one ClusterIP and
    port, which the API's allocators prevent) leaves that fragment out whole: one bad
    Service must not make nft refuse the table."""
    rs = Ruleset(fixed=fixed_part(cfg))
    services: dict[str, tuple[str, ...]] = {}
    externals: dict[str, tuple[str, ...]] = {}
    maps = rs.maps
    for f in fragments:
        clash = [name for name, _ in f.chains if name in services or name in externals]
        # Only the keys a Service claims are checked: the endpoints maps' keys extend them.
        for m, k, _ in f.elements:
            twin = _CLAIMS.get(m)
            if twin is not None and (k in maps[m] or k in maps[twin]):
                clash.append(k)
        if clash:
            rs.skipped.append(f"service {f.service}: {', '.join(clash)} already taken by another service")
            rs.left_out.add(f.service)
            continue
        for name, rules in f.chains:
            (services if name.startswith(("svc-", "loc-")) else externals)[name] = rules
        for m, k, v in f.elements:
            maps[m][k] = v
        rs.sets.update(f.sets)
    # Service chains first: a chain is declared before the chains that jump to it.
    rs.chains = {**services, **externals}
    return rs


# A key is taken whether it has endpoints or is rejected: each claim map with its twin.
_CLAIMS = {SERVICE_IPS: NO_ENDPOINT_SERVICES, NO_ENDPOINT_SERVICES: SERVICE_IPS,
           SERVICE_NODEPORTS: NO_ENDPOINT_NODEPORTS, NO_ENDPOINT_NODEPORTS: SERVICE_NODEPORTS}


def build_ruleset(ports: list[ServicePort], cfg: NodeConfig) -> Ruleset:
    """The table for these service ports (grouped into Services as the proxy does)."""
    by_service: dict[tuple[str, str], list[ServicePort]] = {}
    for p in ports:
        by_service.setdefault((p.namespace, p.name), []).append(p)
    return merge([service_fragment(by_service[k], cfg) for k in sorted(by_service)], cfg)


def _set_decl(timeout: int) -> str:
    return f"{{ type ipv4_addr; flags dynamic,timeout; timeout {timeout}s; }}"


def _elements(m: dict[str, str], ordered: bool = True) -> str:
    """``ordered=False``: as the dict holds them (a merge's order, already fixed: sorting a
    whole table's elements again costs a full sync tens of milliseconds)."""
    items = sorted(m.items()) if ordered else m.items()
    return ", ".join(f"{k} : {v}" if v else k for k, v in items)


def render_full(rs: Ruleset) -> str:
    """The whole table, replacing whatever table ip sigma there was, in one transaction."""
    out = [f"table {FAMILY} {TABLE} {{}}", f"delete table {FAMILY} {TABLE}", f"table {FAMILY} {TABLE} {{", rs.fixed]
    out += [f"\tset {name} {_set_decl(t)}" for name, t in sorted(rs.sets.items())]
    # Service chains before the NodePort chains that go to them (a patch may have added
    # either later than the other).
    chains = sorted(rs.chains.items(), key=lambda item: not item[0].startswith(("svc-", "loc-")))
    out += [f"\tchain {name} {{\n" + "".join(f"\t\t{r}\n" for r in rules) + "\t}" for name, rules in chains]
    out.append("}")
    out += [f"add element {FAMILY} {TABLE} {m} {{ {_elements(e, ordered=False)} }}" for m, e in rs.maps.items() if e]
    return "\n".join(out) + "\n"


def render_delete() -> str:
    """Remove the table if it is there (the empty declaration makes the delete never fail)."""
    return f"table {FAMILY} {TABLE} {{}}\ndelete table {FAMILY} {TABLE}\n"
