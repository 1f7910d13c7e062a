"""Cluster DNS on each node: Service and pod names under the cluster domain (cluster.local).

Built on dnslib (pure Python, small, with a ready UDP/TCP server framework and the record
types): ``records`` turns the Services and EndpointSlices of the agent's shared cache into
answers (pure), ``server`` serves them and forwards other names to the host's resolvers.
"""
