"""The node's Service networking: one Service/EndpointSlice cache, the nftables proxy and the
cluster DNS reading it. Built by the agent when enabled (``sigma agent --service-proxy
--cluster-dns``); a missing nft turns the proxy off with a sentence on the Node, never
stops the agent.

The DNS listens on the node's pod gateway, the first address of the Node's spec.podCIDR
(the sigma0 bridge's address), unless an address is configured; it waits for the podCIDR.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import threading
from dataclasses import dataclass

from sigma.agent.clusterdns.records import Zone, build_zone
from sigma.agent.clusterdns.server import ClusterDNS
from sigma.agent.servicecache import ServiceCache
from sigma.agent.svcproxy.nft import NftError, nft_missing
from sigma.agent.svcproxy.proxy import ServiceProxy
from sigma.agent.svcproxy.rules import NodeConfig
from sigma.api.errors import ApiError
from sigma.client.base import ApiClient

log = logging.getLogger("sigma.agent.servicenet")


@dataclass
class ServiceNetOptions:
    proxy: bool = False  # off by default: it programs the host's nftables
    dns: bool = False
    cluster_cidr: str | None = None  # e.g. 10.244.0.0/16
    cluster_domain: str = "cluster.local"
    dns_address: str | None = None  # default: the first address of the Node's podCIDR
    dns_port: int = 53
    masquerade_egress: bool = True


def gateway_address(pod_cidr: str) -> str:
    """The bridge's address: the first usable address of the node's pod CIDR."""
    return str(next(ipaddress.IPv4Network(pod_cidr, strict=False).hosts()))


class ServiceNetwork:
    def __init__(self, client: ApiClient, node_name: str, opts: ServiceNetOptions) -> None:
        self.client, self.node_name, self.opts = client, node_name, opts
        self.cache = ServiceCache(client)
        self.missing = nft_missing() if opts.proxy else None
        self.proxy = (ServiceProxy(self.cache, NodeConfig(opts.cluster_cidr, opts.masquerade_egress, node_name))
                      if opts.proxy and self.missing is None else None)
        self.dns: ClusterDNS | None = None
        self._zone_changed = self.cache.subscribe()
        self._zone = Zone(opts.cluster_domain)
        self._lock = threading.Lock()

    def zone(self) -> Zone:
        if self._zone_changed.is_set():  # rebuilt on the first query after a change
            with self._lock:
                self._zone_changed.clear()
                self._zone = build_zone(*self.cache.snapshot(), self.opts.cluster_domain)
        return self._zone

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        threads = self.cache.start(stop)
        if self.proxy is not None:
            threads.append(threading.Thread(target=self.proxy.run, args=(stop,), name="agent-svcproxy", daemon=True))
        if self.opts.dns:
            threads.append(threading.Thread(target=self._serve_dns, args=(stop,), name="agent-dns", daemon=True))
        for t in threads[2:]:
            t.start()
        return threads

    def _serve_dns(self, stop: threading.Event) -> None:
        address = self.opts.dns_address
        while address is None and not stop.is_set():
            try:
                pod_cidr = (self.client.get("nodes", self.node_name).get("spec") or {}).get("podCIDR")
                address = gateway_address(pod_cidr) if pod_cidr else None
            except (ApiError, ConnectionError, ValueError) as err:
                log.debug("no podCIDR for the cluster DNS yet: %s", err)
            if address is None:
                stop.wait(2.0)
        if stop.is_set() or address is None:
            return
        # The gateway address appears when the pod network sets up its bridge: until then, retry.
        while not stop.is_set():
            try:
                self.dns = ClusterDNS(self.zone, address, self.opts.dns_port)
                self.dns.start()
                return
            except OSError as err:
                if err.errno != errno.EADDRNOTAVAIL:
                    log.error("cluster DNS cannot listen on %s:%d: %s", address, self.opts.dns_port, err)
                    return
                log.info("cluster DNS waits for %s to exist", address)
                stop.wait(2.0)

    def stop(self, remove_rules: bool) -> None:
        if self.dns is not None:
            self.dns.stop()
        if remove_rules and self.proxy is not None:
            try:
                self.proxy.remove()
            except NftError as err:
                log.warning("could not remove the service proxy's table: %s", err)
