"""The service proxy: Services and EndpointSlices become nftables rules on each node.

The design is that of kube-proxy's nftables mode, in one table of Sigma's own, ``table ip
sigma`` (IPv4 only: Sigma's pod network is IPv4; an ``ip`` table also keeps the verdict-map
keys one address family wide):

- ``services``: one verdict map ``service-ips`` keyed by ``ip daddr . meta l4proto . th dport``
  sends a ClusterIP (or external IP) connection to the chain that picks its endpoint; a second map
  ``service-nodeports`` keyed by ``meta l4proto . th dport`` does the same for NodePorts, for
  packets whose destination is one of this node's addresses (``fib daddr type local``);
- the endpoints are data: ``service-endpoints-PROTO`` maps ``CLUSTERIP . PORT . I`` to the
  i-th endpoint's ``IP . PORT`` (``nodeport-endpoints-PROTO`` the same under ``NODEPORT . I``)
  and the verdict is ``goto spread-PROTO-N``, N the port's number of endpoints: a spread
  chain, one per protocol and N and shared by every such port, does ``meta l4proto PROTO dnat
  ip to ip daddr . th dport . numgen random mod N map @service-endpoints-PROTO`` (uniform).
  An endpoint that comes or goes is then a few element updates in one transaction, no rule:
  with thousands of Services a rule costs tens of milliseconds (nft reads every chain of the
  table first; a ``dnat`` rule makes the kernel validate every chain again), elements about one;
- a port with ClientIP affinity (per-endpoint sets with a timeout), with the Local NodePort
  policy (two endpoint lists), or with more endpoints than the spread chains cover keeps a
  chain of its own, endpoints inline (``numgen random mod N-i`` cascade, uniform);
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
