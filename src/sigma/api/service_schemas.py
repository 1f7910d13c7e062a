"""The API schemas of core/v1 Service and discovery.k8s.io/v1 EndpointSlice, in the schema DSL
of the built-in kinds (field names, types and bounds as Kubernetes declares them)."""

from __future__ import annotations

from sigma.api.schema import (
    BOOL,
    CONDITION,
    INT_OR_STRING,
    STR,
    STRMAP,
    STRS,
    Schema,
    arr,
    boolean,
    int32,
    kind_schema,
    obj,
    string,
)

PROTOCOLS = ("TCP", "UDP", "SCTP")
SERVICE_PORT = obj(
    "A port the Service exposes.",
    name=string("The port's name, a DNS-1123 label unique in the Service; required when there is more than "
                "one port."),
    protocol=string("TCP (default), UDP or SCTP."),
    appProtocol=string("The application protocol (a hint for implementations)."),
    port=int32("The port the Service listens on, 1-65535."),
    targetPort=INT_OR_STRING.doc("The port of the pods: a number or the name of a container port; default: "
                                 "the value of port."),
    nodePort=int32("With type NodePort: the port on every node, in the node-port range; allocated when "
                   "not given."),
)
SESSION_AFFINITY_CONFIG = obj(
    "The session affinity's settings.",
    clientIP=obj("ClientIP affinity.", timeoutSeconds=int32("How long a client sticks, 1-86400; default 10800.")),
)
SERVICE_SPEC = obj(
    "What a Service exposes and where its traffic goes.",
    type=string("ClusterIP (default), NodePort, LoadBalancer or ExternalName."),
    ports=arr(SERVICE_PORT, "port", "The ports the Service exposes."),
    selector=STRMAP.doc("The labels of the pods traffic is sent to; without one the Service's EndpointSlices "
                        "are managed by hand."),
    clusterIP=string("The virtual IP, allocated from the service CIDR when empty; None makes the Service "
                     "headless."),
    clusterIPs=arr(STR, description="The virtual IPs (clusterIP first)."),
    externalName=string("ExternalName Services: the DNS name the Service's name is an alias of."),
    externalIPs=STRS.doc("Addresses outside the cluster the Service also answers on."),
    sessionAffinity=string("None (default) or ClientIP."),
    sessionAffinityConfig=SESSION_AFFINITY_CONFIG,
    loadBalancerIP=STR, loadBalancerSourceRanges=STRS, loadBalancerClass=STR,
    allocateLoadBalancerNodePorts=BOOL,
    externalTrafficPolicy=string("Cluster (default for NodePort and LoadBalancer) or Local."),
    internalTrafficPolicy=string("Cluster (default) or Local."),
    healthCheckNodePort=int32("The node port of the health check (LoadBalancer with Local policy)."),
    publishNotReadyAddresses=boolean("Endpoints of pods that are not Ready count as ready."),
    ipFamilies=arr(STR, description="IPv4 (the only family Sigma's service network has)."),
    ipFamilyPolicy=string("SingleStack (default), PreferDualStack or RequireDualStack."),
    trafficDistribution=STR,
)
SERVICE_STATUS = obj(
    "The Service's observed state.",
    loadBalancer=obj(ingress=arr(obj(ip=STR, hostname=STR, ipMode=STR,
                                     ports=arr(obj(port=int32(), protocol=STR, error=STR))))),
    conditions=arr(CONDITION, "type"),
)
SERVICE_SCHEMA = kind_schema(SERVICE_SPEC, SERVICE_STATUS, "A named, stable address for a set of pods.")

OBJECT_REFERENCE = obj(kind=STR, namespace=STR, name=STR, uid=STR, apiVersion=STR, resourceVersion=STR,
                       fieldPath=STR)
ENDPOINT = obj(
    "One endpoint of a Service: a pod's address.",
    addresses=arr(STR, description="The endpoint's addresses (1-100), of the slice's addressType."),
    conditions=obj("The endpoint's state.",
                   ready=boolean("The endpoint takes new traffic (its pod is Ready and not terminating)."),
                   serving=boolean("The pod is Ready, whether or not it is terminating."),
                   terminating=boolean("The pod is being deleted.")),
    hostname=string("The endpoint's hostname (a DNS-1123 label)."),
    targetRef=OBJECT_REFERENCE.doc("The pod of the endpoint."),
    nodeName=string("The node the endpoint is on."),
    zone=string("The zone the endpoint is in."),
    hints=obj(forZones=arr(obj(name=STR)), forNodes=arr(obj(name=STR))),
    deprecatedTopology=STRMAP,
)
ENDPOINT_PORT = obj(
    "A port of the slice's endpoints.",
    name=string("The Service port's name."),
    protocol=string("TCP, UDP or SCTP."),
    port=int32("The port number of the endpoints."),
    appProtocol=string("The application protocol."),
)
ENDPOINT_SLICE_SCHEMA: Schema = kind_schema(
    doc="A subset of a Service's endpoints.",
    addressType=string("IPv4, IPv6 or FQDN: the kind of every address in the slice (immutable)."),
    endpoints=arr(ENDPOINT, description="The endpoints (at most 1000)."),
    ports=arr(ENDPOINT_PORT, description="The ports of every endpoint (at most 100)."),
)
