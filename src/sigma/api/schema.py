"""Schemas of the served kinds, in a small DSL.

One description of each kind drives three things, so they cannot disagree:
- pruning: fields the schema does not know are rejected with their path (or dropped when
  the client asks for ``fieldValidation=Ignore``); see docs in README "Unknown fields";
- strategic merge patch: the merge key of each list (containers by name, env by name...);
- the OpenAPI document served to kubectl and other clients.

Subtrees Sigma stores but does not interpret (probes, volumes, security contexts of
features Sigma does not enforce yet) are ``free()``: any JSON is kept as sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Schema:
    type: str  # object | array | string | integer | number | boolean | quantity | free
    properties: dict[str, Schema] = field(default_factory=dict)
    items: Schema | None = None
    values: Schema | None = None  # for maps (object with arbitrary keys)
    merge_key: str | None = None  # strategic merge: list items merged by this key
    description: str = ""

    def child(self, key: str) -> Schema | None:
        if self.type == "free":
            return self
        if self.values is not None:
            return self.values
        return self.properties.get(key)


def obj(description: str = "", **properties: Schema) -> Schema:
    return Schema("object", properties=properties, description=description)


def arr(items: Schema, merge_key: str | None = None) -> Schema:
    return Schema("array", items=items, merge_key=merge_key)


def mapof(values: Schema) -> Schema:
    return Schema("object", values=values)


STR = Schema("string")
INT = Schema("integer")
NUM = Schema("number")
BOOL = Schema("boolean")
QTY = Schema("quantity")
FREE = Schema("free")
STRMAP = mapof(STR)
STRS = arr(STR)

OWNER_REF = obj(apiVersion=STR, kind=STR, name=STR, uid=STR, controller=BOOL, blockOwnerDeletion=BOOL)
OBJECT_META = obj(
    "Standard object metadata.",
    name=STR, generateName=STR, namespace=STR, uid=STR, resourceVersion=STR, generation=INT,
    creationTimestamp=STR, deletionTimestamp=STR, deletionGracePeriodSeconds=INT, labels=STRMAP,
    annotations=STRMAP, ownerReferences=arr(OWNER_REF, "uid"), finalizers=STRS, managedFields=FREE,
    selfLink=STR,
)
LABEL_SELECTOR = obj(matchLabels=STRMAP, matchExpressions=arr(obj(key=STR, operator=STR, values=STRS)))
RESOURCES = obj(limits=mapof(QTY), requests=mapof(QTY), claims=FREE)
TOLERATION = obj(key=STR, operator=STR, value=STR, effect=STR, tolerationSeconds=INT)
TAINT = obj(key=STR, value=STR, effect=STR, timeAdded=STR)
NODE_SELECTOR_TERM = obj(matchExpressions=arr(obj(key=STR, operator=STR, values=STRS)),
                         matchFields=arr(obj(key=STR, operator=STR, values=STRS)))
POD_AFFINITY_TERM = obj(labelSelector=LABEL_SELECTOR, topologyKey=STR, namespaces=STRS,
                        namespaceSelector=LABEL_SELECTOR, matchLabelKeys=STRS, mismatchLabelKeys=STRS)
WEIGHTED_POD_TERM = obj(weight=INT, podAffinityTerm=POD_AFFINITY_TERM)
POD_AFFINITY = obj(requiredDuringSchedulingIgnoredDuringExecution=arr(POD_AFFINITY_TERM),
                   preferredDuringSchedulingIgnoredDuringExecution=arr(WEIGHTED_POD_TERM))
AFFINITY = obj(
    nodeAffinity=obj(
        requiredDuringSchedulingIgnoredDuringExecution=obj(nodeSelectorTerms=arr(NODE_SELECTOR_TERM)),
        preferredDuringSchedulingIgnoredDuringExecution=arr(obj(weight=INT, preference=NODE_SELECTOR_TERM)),
    ),
    podAffinity=POD_AFFINITY,
    podAntiAffinity=POD_AFFINITY,
)
SPREAD = obj(maxSkew=INT, topologyKey=STR, whenUnsatisfiable=STR, labelSelector=LABEL_SELECTOR,
             minDomains=INT, nodeAffinityPolicy=STR, nodeTaintsPolicy=STR, matchLabelKeys=STRS)
ENV_VAR = obj(name=STR, value=STR, valueFrom=FREE)
CONTAINER = obj(
    name=STR, image=STR, command=STRS, args=STRS, workingDir=STR,
    ports=arr(obj(name=STR, containerPort=INT, protocol=STR, hostPort=INT, hostIP=STR), "containerPort"),
    env=arr(ENV_VAR, "name"), envFrom=FREE, resources=RESOURCES,
    volumeMounts=arr(FREE, "mountPath"), volumeDevices=FREE, imagePullPolicy=STR,
    securityContext=FREE, livenessProbe=FREE, readinessProbe=FREE, startupProbe=FREE, lifecycle=FREE,
    terminationMessagePath=STR, terminationMessagePolicy=STR, stdin=BOOL, stdinOnce=BOOL, tty=BOOL,
    resizePolicy=FREE, restartPolicy=STR,
)
POD_SPEC = obj(
    containers=arr(CONTAINER, "name"), initContainers=arr(CONTAINER, "name"),
    ephemeralContainers=FREE, restartPolicy=STR, terminationGracePeriodSeconds=INT,
    activeDeadlineSeconds=INT, dnsPolicy=STR, dnsConfig=FREE, nodeSelector=STRMAP,
    serviceAccountName=STR, serviceAccount=STR, automountServiceAccountToken=BOOL, nodeName=STR,
    hostNetwork=BOOL, hostPID=BOOL, hostIPC=BOOL, shareProcessNamespace=BOOL, securityContext=FREE,
    imagePullSecrets=arr(obj(name=STR), "name"), hostname=STR, subdomain=STR, affinity=AFFINITY,
    schedulerName=STR, tolerations=arr(TOLERATION), hostAliases=FREE, priorityClassName=STR,
    priority=INT, preemptionPolicy=STR, runtimeClassName=STR, overhead=mapof(QTY),
    topologySpreadConstraints=arr(SPREAD), volumes=arr(FREE, "name"), enableServiceLinks=BOOL,
    readinessGates=FREE, os=FREE, setHostnameAsFQDN=BOOL, schedulingGates=arr(obj(name=STR), "name"),
    resourceClaims=FREE, resources=RESOURCES,
)
CONDITION = obj(type=STR, status=STR, reason=STR, message=STR, lastTransitionTime=STR,
                lastProbeTime=STR, lastHeartbeatTime=STR, lastUpdateTime=STR, observedGeneration=INT)
POD_STATUS = obj(
    phase=STR, conditions=arr(CONDITION, "type"), message=STR, reason=STR, nominatedNodeName=STR,
    hostIP=STR, hostIPs=FREE, podIP=STR, podIPs=FREE, startTime=STR,
    containerStatuses=arr(FREE, "name"), initContainerStatuses=arr(FREE, "name"),
    ephemeralContainerStatuses=FREE, qosClass=STR, resize=STR, resourceClaimStatuses=FREE,
)
POD_TEMPLATE = obj(metadata=OBJECT_META, spec=POD_SPEC)


def kind_schema(spec: Schema | None = None, status: Schema | None = None, **extra: Schema) -> Schema:
    props: dict[str, Schema] = {"apiVersion": STR, "kind": STR, "metadata": OBJECT_META}
    if spec is not None:
        props["spec"] = spec
    if status is not None:
        props["status"] = status
    props.update(extra)
    return Schema("object", properties=props)


NODE_SPEC = obj(podCIDR=STR, podCIDRs=STRS, providerID=STR, unschedulable=BOOL, taints=arr(TAINT),
                configSource=FREE, externalID=STR)
NODE_STATUS = obj(
    capacity=mapof(QTY), allocatable=mapof(QTY), phase=STR, conditions=arr(CONDITION, "type"),
    addresses=arr(obj(type=STR, address=STR), "type"), daemonEndpoints=FREE, nodeInfo=FREE,
    images=FREE, volumesInUse=FREE, volumesAttached=FREE, config=FREE, runtimeHandlers=FREE, features=FREE,
)
DEPLOYMENT_SPEC = obj(
    replicas=INT, selector=LABEL_SELECTOR, template=POD_TEMPLATE,
    strategy=obj(type=STR, rollingUpdate=obj(maxSurge=FREE, maxUnavailable=FREE)),
    minReadySeconds=INT, revisionHistoryLimit=INT, paused=BOOL, progressDeadlineSeconds=INT,
)
DEPLOYMENT_STATUS = obj(
    observedGeneration=INT, replicas=INT, updatedReplicas=INT, readyReplicas=INT,
    availableReplicas=INT, unavailableReplicas=INT, terminatingReplicas=INT,
    conditions=arr(CONDITION, "type"), collisionCount=INT,
)

KIND_SCHEMAS: dict[str, Schema] = {
    "Namespace": kind_schema(obj(finalizers=STRS), obj(phase=STR, conditions=arr(CONDITION, "type"))),
    "Node": kind_schema(NODE_SPEC, NODE_STATUS),
    "Pod": kind_schema(POD_SPEC, POD_STATUS),
    "Event": kind_schema(
        involvedObject=obj(kind=STR, namespace=STR, name=STR, uid=STR, apiVersion=STR,
                           resourceVersion=STR, fieldPath=STR),
        reason=STR, message=STR, source=obj(component=STR, host=STR), firstTimestamp=STR,
        lastTimestamp=STR, count=INT, type=STR, eventTime=STR, series=FREE, action=STR, related=FREE,
        reportingComponent=STR, reportingInstance=STR,
    ),
    "ResourceQuota": kind_schema(obj(hard=mapof(QTY), scopes=STRS, scopeSelector=FREE),
                                 obj(hard=mapof(QTY), used=mapof(QTY))),
    "Deployment": kind_schema(DEPLOYMENT_SPEC, DEPLOYMENT_STATUS),
    "PriorityClass": kind_schema(value=INT, globalDefault=BOOL, description=STR, preemptionPolicy=STR),
    "Lease": kind_schema(obj(holderIdentity=STR, leaseDurationSeconds=INT, acquireTime=STR,
                             renewTime=STR, leaseTransitions=INT, strategy=STR, preferredHolder=STR)),
    "Scale": kind_schema(obj(replicas=INT), obj(replicas=INT, selector=STR)),
    # Sigma's own kinds: their spec and status are checked by their validators in
    # sigma.api.validation; the schema keeps them whole.
    "NodeMetric": kind_schema(FREE, FREE),
    "NodeSLO": kind_schema(FREE, FREE),
    "BatchJob": kind_schema(FREE, FREE),
    "PredictiveScaler": kind_schema(FREE, FREE),
}


_CONTAINERS = ("object", "array")


def prune(value: Any, schema: Schema, path: str, unknown: list[str]) -> Any:
    """A copy of ``value`` holding only what the schema knows; the path of every unknown
    field is appended to ``unknown``. Nulls are removed (Kubernetes treats them as unset)."""
    if schema.type == "free" or value is None:
        return value
    if schema.type == "object" and isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is None:
                continue
            sub = schema.child(key)
            if sub is None:
                unknown.append(f"{path}.{key}" if path else key)
            elif isinstance(item, (dict, list)) and sub.type in _CONTAINERS:
                out[key] = prune(item, sub, f"{path}.{key}" if path else key, unknown)
            else:  # a leaf, or a value of the wrong type (type_errors reports it): kept as is
                out[key] = item
        return out
    if schema.type == "array" and isinstance(value, list) and schema.items is not None:
        return [prune(item, schema.items, f"{path}[{i}]", unknown) for i, item in enumerate(value)]
    return value


def type_errors(value: Any, schema: Schema, path: str) -> list[tuple[str, str]]:
    """(path, message) for every value whose JSON type is not the schema's."""
    errors: list[tuple[str, str]] = []
    _check_types(value, schema, path, errors)
    return errors


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "quantity": (str, int, float), "object": (dict,), "array": (list,),
}


def _check_types(value: Any, schema: Schema, path: str, errors: list[tuple[str, str]]) -> None:
    if schema.type == "free" or value is None:
        return
    if not _type_ok(value, schema):
        errors.append((path, f"Invalid value: {_short(value)}: expected {schema.type}, got {_json_type(value)}"))
        return
    if isinstance(value, dict):
        for key, item in value.items():
            sub = schema.child(key)
            if sub is None or sub.type == "free" or item is None:
                continue
            # Leaves are checked here: their path is only spelled out for an error.
            if isinstance(item, (dict, list)) or not _type_ok(item, sub):
                _check_types(item, sub, f"{path}.{key}" if path else key, errors)
    elif isinstance(value, list) and schema.items is not None:
        for i, item in enumerate(value):
            _check_types(item, schema.items, f"{path}[{i}]", errors)


def _type_ok(value: Any, schema: Schema) -> bool:
    return isinstance(value, _PY_TYPES[schema.type]) and (schema.type == "boolean" or not isinstance(value, bool))


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def schema_at(kind: str, path: list[str]) -> Schema | None:
    """The schema of the field at ``path`` (list indices omitted) in a kind, or None."""
    node: Schema | None = KIND_SCHEMAS.get(kind)
    for key in path:
        if node is None:
            return None
        if node.type == "array":
            node = node.items
            if node is None:
                return None
        node = node.child(key)
    return node
