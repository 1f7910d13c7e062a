"""The service proxy: Services and EndpointSlices become nftables rules on each node.

The design is that of kube-proxy's nftables mode, in one table of Sigma's own, ``table ip
sigma`` (IPv4 only: Sigma's pod network is IPv4; an ``ip`` table also keeps the verdict-map
keys one address family wide):

- ``services``: one verdict map ``service-ips`` keyed by ``ip daddr . meta l4proto . th dport``
  sends a ClusterIP (or external IP) connection to its service-port chain; a second map
  ``service-nodeports`` keyed by ``meta l4proto . th dport`` does the same for NodePorts, for
  packets whose destination is one of this node's addresses (``fib daddr type local``);
- a service-port chain spreads new connections over its endpoints with ``numgen random mod N
  vmap {...}`` (after ClientIP affinity, when asked for, through per-endpoint sets with a
  timeout), each endpoint chain does ``dnat to IP:PORT``;
- masquerade (a mark bit, acted on in postrouting) for hairpin traffic (an endpoint reaching
  itself through its service), for traffic from outside the cluster CIDR to a ClusterIP, for
  every NodePort connection, and, when enabled, for pod traffic leaving the cluster CIDR
  (the pod bridge runs without ipMasq: this is where pods get to the outside);
- a service-port without usable endpoints is rejected in the filter hooks (TCP reset, ICMP
  port unreachable otherwise) through ``no-endpoint-services``/``no-endpoint-nodeports``.

Modules: ``model`` (Kubernetes objects -> service ports with their endpoints, pure),
``rules`` (service ports -> the table, as a full script or as the difference from the
table applied last, pure), ``nft`` (running ``nft -f -``), ``proxy`` (the loop).
"""
