"""A pod's /etc/resolv.conf and /etc/hosts, pure, as kubelet writes them.

dnsPolicy (kubelet's getPodDNSType):
- ClusterFirst (the default): the cluster DNS server, the pod's search path
  ``<ns>.svc.<domain> svc.<domain> <domain>`` and the host's, ``options ndots:5``; a
  hostNetwork pod gets the host's resolv.conf instead (as with Default).
- ClusterFirstWithHostNet: the cluster DNS server, hostNetwork or not.
- Default: the host's resolv.conf.
- None: only what spec.dnsConfig says.
spec.dnsConfig is merged on top: nameservers (at most 3) and searches appended, options by
name (the pod's value wins).

Sigma's cluster DNS server listens on the node's pod-CIDR gateway address.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CLUSTER_DOMAIN = "cluster.local"
MAX_NAMESERVERS = 3
MAX_SEARCHES = 32


@dataclass(frozen=True)
class Resolv:
    nameservers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"nameserver {n}" for n in self.nameservers]
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "\n".join(lines) + "\n"


def parse_resolv(text: str) -> Resolv:
    nameservers, searches, options = [], [], []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            nameservers.append(words[1])
        elif words[0] in ("search", "domain"):
            searches = words[1:]  # the last search or domain line wins, as in the resolver
        elif words[0] == "options":
            options += words[1:]
    return Resolv(nameservers, searches, options)


def uses_cluster_dns(pod: dict[str, Any]) -> bool | None:
    """True: cluster DNS; False: the host's; None: dnsPolicy None (dnsConfig alone)."""
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "None":
        return None
    if policy == "ClusterFirstWithHostNet":
        return True
    if policy == "ClusterFirst":
        return not spec.get("hostNetwork")
    return False  # Default


def resolv_conf(pod: dict[str, Any], cluster_dns: str, host: Resolv, domain: str = CLUSTER_DOMAIN) -> str:
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    cluster = uses_cluster_dns(pod)
    if cluster is None:
        base = Resolv()
    elif cluster:
        base = Resolv([cluster_dns], [f"{namespace}.svc.{domain}", f"svc.{domain}", domain, *host.searches],
                      ["ndots:5"])
    else:
        base = host
    return _merge(base, (pod.get("spec") or {}).get("dnsConfig") or {}).render()


def _merge(base: Resolv, config: dict[str, Any]) -> Resolv:
    nameservers = list(dict.fromkeys([*base.nameservers, *(config.get("nameservers") or [])]))[:MAX_NAMESERVERS]
    searches = list(dict.fromkeys([*base.searches, *(config.get("searches") or [])]))[:MAX_SEARCHES]
    options: dict[str, str] = {}
    for option in base.options:
        options[option.partition(":")[0]] = option
    for option in config.get("options") or []:
        if isinstance(option, dict) and option.get("name"):
            value = option.get("value")
            options[str(option["name"])] = f"{option['name']}:{value}" if value is not None else str(option["name"])
    return Resolv(nameservers, searches, list(options.values()))


def hosts_file(pod: dict[str, Any], pod_ips: list[str], domain: str = CLUSTER_DOMAIN) -> str:
    """kubelet's managed hosts file: localhost, the pod's own name on its IPs, hostAliases."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    hostname = str(spec.get("hostname") or meta.get("name") or "")[:63]
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    subdomain = spec.get("subdomain")
    for ip in pod_ips:
        if subdomain:
            fqdn = f"{hostname}.{subdomain}.{meta.get('namespace') or 'default'}.svc.{domain}"
            lines.append(f"{ip}\t{fqdn}\t{hostname}")
        else:
            lines.append(f"{ip}\t{hostname}")
    aliases = [a for a in spec.get("hostAliases") or [] if isinstance(a, dict) and a.get("ip")]
    if aliases:
        lines.append("\n# Entries added by HostAliases.")
        lines += [f"{a['ip']}\t" + "\t".join(a.get("hostnames") or []) for a in aliases]
    return "\n".join(lines) + "\n"
