"""Schemas of the served kinds, in a small DSL.

One description of each kind drives four things, so they cannot disagree:
- pruning: fields the schema does not know are rejected with their path (or dropped when
  the client asks for ``fieldValidation=Ignore``); see docs in README "Unknown fields";
- bounds: integers are int32 or int64 where Kubernetes declares them so, with the minimum
  and maximum Kubernetes validates (``bound_errors``), strings and lists their longest;
- strategic merge patch: the merge key of each list (containers by name, env by name...);
- the OpenAPI document served to kubectl and other clients (with descriptions, which
  `kubectl explain` prints).

Subtrees Sigma stores but does not interpret (volumes, security contexts of features Sigma
does not enforce yet) are ``free()``: any JSON is kept as sent.

Sigma's own kinds (BatchJob, NodeSLO, NodeMetric, PredictiveScaler) describe their schemas
next to their rules (sigma.colocation.jobspec, sigma.colocation.slo, sigma.predict.scalerspec)
and register them here with ``register_schema`` when they are installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_FORMAT_RANGE: dict[str, tuple[int, int]] = {"int32": (INT32_MIN, INT32_MAX), "int64": (INT64_MIN, INT64_MAX)}


@dataclass(frozen=True)
class Schema:
    # object | array | string | integer | number | boolean | quantity | intorstring | free
    type: str
    properties: dict[str, Schema] = field(default_factory=dict)
    items: Schema | None = None
    values: Schema | None = None  # for maps (object with arbitrary keys)
    merge_key: str | None = None  # strategic merge: list items merged by this key
    description: str = ""
    format: str = ""  # int32 | int64 for integers, as OpenAPI spells them
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None  # strings: characters
    max_items: int | None = None  # arrays
    enum: tuple[str, ...] = ()

    def child(self, key: str) -> Schema | None:
        if self.type == "free":
            return self
        if self.values is not None:
            return self.values
        return self.properties.get(key)

    def doc(self, description: str) -> Schema:
        """The same schema with a description (for `kubectl explain`)."""
        return replace(self, description=description)


def obj(description: str = "", **properties: Schema) -> Schema:
    return Schema("object", properties=properties, description=description)


def arr(items: Schema, merge_key: str | None = None, description: str = "", max_items: int | None = None) -> Schema:
    return Schema("array", items=items, merge_key=merge_key, description=description, max_items=max_items)


def mapof(values: Schema, description: str = "") -> Schema:
    return Schema("object", values=values, description=description)


def int32(description: str = "", minimum: int | None = None, maximum: int | None = None) -> Schema:
    """An int32 field; ``minimum``/``maximum`` narrow the int32 range (Kubernetes' validation)."""
    return Schema("integer", description=description, format="int32", minimum=minimum, maximum=maximum)


def int64(description: str = "", minimum: int | None = None, maximum: int | None = None) -> Schema:
    return Schema("integer", description=description, format="int64", minimum=minimum, maximum=maximum)


def number(description: str = "", minimum: float | None = None, maximum: float | None = None) -> Schema:
    return Schema("number", description=description, minimum=minimum, maximum=maximum)


def string(description: str = "", max_length: int | None = None, enum: tuple[str, ...] = ()) -> Schema:
    return Schema("string", description=description, max_length=max_length, enum=enum)


def boolean(description: str = "") -> Schema:
    return Schema("boolean", description=description)


def free(description: str = "") -> Schema:
    return Schema("free", description=description)


STR = Schema("string")
INT32 = int32()
INT64 = int64()
NONNEG32 = int32(minimum=0)
NONNEG64 = int64(minimum=0)
INT = INT64  # an integer Kubernetes does not bound beyond int64
NUM = Schema("number")
BOOL = Schema("boolean")
QTY = Schema("quantity")
INT_OR_STRING = Schema("intorstring")
FREE = Schema("free")
STRMAP = mapof(STR)
STRS = arr(STR)
PORT = int32(minimum=1, maximum=65535)

OWNER_REF = obj(apiVersion=STR, kind=STR, name=STR, uid=STR, controller=BOOL, blockOwnerDeletion=BOOL)
OBJECT_META = obj(
    "Standard object metadata.",
    name=string("The object's name, unique in its namespace (a DNS-1123 subdomain for most kinds)."),
    generateName=string("A prefix the server completes into a unique name when name is empty."),
    namespace=string("The namespace of a namespaced object (a DNS-1123 label)."),
    uid=STR, resourceVersion=STR, generation=INT64,
    creationTimestamp=STR, deletionTimestamp=STR, deletionGracePeriodSeconds=INT64,
    labels=mapof(STR, "Key/value pairs for selecting objects: keys are qualified names (an optional "
                 "DNS-subdomain prefix of at most 253 characters, '/', a name of at most 63), values at "
                 "most 63 characters."),
    annotations=mapof(STR, "Arbitrary key/value pairs: keys are qualified names, keys and values together "
                      "at most 262144 bytes."),
    ownerReferences=arr(OWNER_REF, "uid"), finalizers=STRS, managedFields=FREE,
    selfLink=STR,
)
LABEL_SELECTOR = obj(matchLabels=STRMAP, matchExpressions=arr(obj(key=STR, operator=STR, values=STRS)))
RESOURCES = obj(limits=mapof(QTY), requests=mapof(QTY), claims=FREE)
TOLERATION = obj(key=STR, operator=STR, value=STR, effect=STR, tolerationSeconds=INT64)
TAINT = obj(key=STR, value=STR, effect=STR, timeAdded=STR)
NODE_SELECTOR_TERM = obj(matchExpressions=arr(obj(key=STR, operator=STR, values=STRS)),
                         matchFields=arr(obj(key=STR, operator=STR, values=STRS)))
POD_AFFINITY_TERM = obj(labelSelector=LABEL_SELECTOR, topologyKey=STR, namespaces=STRS,
                        namespaceSelector=LABEL_SELECTOR, matchLabelKeys=STRS, mismatchLabelKeys=STRS)
WEIGHT = int32(minimum=1, maximum=100)
WEIGHTED_POD_TERM = obj(weight=WEIGHT, podAffinityTerm=POD_AFFINITY_TERM)
POD_AFFINITY = obj(requiredDuringSchedulingIgnoredDuringExecution=arr(POD_AFFINITY_TERM),
                   preferredDuringSchedulingIgnoredDuringExecution=arr(WEIGHTED_POD_TERM))
AFFINITY = obj(
    nodeAffinity=obj(
        requiredDuringSchedulingIgnoredDuringExecution=obj(nodeSelectorTerms=arr(NODE_SELECTOR_TERM)),
        preferredDuringSchedulingIgnoredDuringExecution=arr(obj(weight=WEIGHT, preference=NODE_SELECTOR_TERM)),
    ),
    podAffinity=POD_AFFINITY,
    podAntiAffinity=POD_AFFINITY,
)
SPREAD = obj(maxSkew=int32(minimum=1), topologyKey=STR, whenUnsatisfiable=STR, labelSelector=LABEL_SELECTOR,
             minDomains=int32(minimum=1), nodeAffinityPolicy=STR, nodeTaintsPolicy=STR, matchLabelKeys=STRS)
ENV_VAR = obj(name=STR, value=STR, valueFrom=FREE)
# A probe's port: a number (1-65535) or the name of a container port.
PROBE_PORT = Schema("intorstring", minimum=1, maximum=65535)
PROBE = obj(
    exec=obj(command=STRS),
    httpGet=obj(path=STR, port=PROBE_PORT, host=STR, scheme=STR, httpHeaders=arr(obj(name=STR, value=STR))),
    tcpSocket=obj(port=PROBE_PORT, host=STR),
    grpc=obj(port=PORT, service=STR),
    initialDelaySeconds=NONNEG32, timeoutSeconds=NONNEG32, periodSeconds=NONNEG32,
    successThreshold=NONNEG32, failureThreshold=NONNEG32, terminationGracePeriodSeconds=int64(minimum=1),
)
CONTAINER_PORT = obj(name=STR, containerPort=PORT, protocol=STR, hostPort=int32(minimum=0, maximum=65535),
                     hostIP=STR)
CONTAINER = obj(
    "A container of a pod.",
    name=string("The container's name, a DNS-1123 label unique in the pod."),
    image=string("The OCI image; empty runs the command on the host's filesystem (the process runtime)."),
    command=arr(STR, description="The entrypoint."), args=arr(STR, description="Arguments to the entrypoint."),
    workingDir=STR,
    ports=arr(CONTAINER_PORT, "containerPort", "Ports the container listens on (1-65535)."),
    env=arr(ENV_VAR, "name", "Environment variables."), envFrom=FREE,
    resources=RESOURCES.doc("Requests and limits of cpu, memory and extended resources."),
    volumeMounts=arr(FREE, "mountPath"), volumeDevices=FREE,
    imagePullPolicy=string("Always, IfNotPresent or Never."),
    securityContext=FREE, livenessProbe=PROBE.doc("Restarts the container when it fails."),
    readinessProbe=PROBE.doc("Marks the pod Ready while it succeeds."),
    startupProbe=PROBE.doc("Holds the other probes until it succeeds."), lifecycle=FREE,
    terminationMessagePath=STR, terminationMessagePolicy=STR, stdin=BOOL, stdinOnce=BOOL, tty=BOOL,
    resizePolicy=FREE, restartPolicy=STR,
)
POD_SPEC = obj(
    "The spec of a pod.",
    containers=arr(CONTAINER, "name", "The containers of the pod (at least one)."),
    initContainers=arr(CONTAINER, "name", "Containers run to completion, in order, before the others."),
    ephemeralContainers=FREE, restartPolicy=STR, terminationGracePeriodSeconds=NONNEG64,
    activeDeadlineSeconds=int64(minimum=1, maximum=INT32_MAX), dnsPolicy=STR, dnsConfig=FREE,
    nodeSelector=STRMAP, serviceAccountName=STR, serviceAccount=STR, automountServiceAccountToken=BOOL,
    nodeName=STR, hostNetwork=BOOL, hostPID=BOOL, hostIPC=BOOL, shareProcessNamespace=BOOL, securityContext=FREE,
    imagePullSecrets=arr(obj(name=STR), "name"), hostname=STR, subdomain=STR, affinity=AFFINITY,
    schedulerName=STR, tolerations=arr(TOLERATION), hostAliases=FREE, priorityClassName=STR,
    priority=INT32, preemptionPolicy=STR, runtimeClassName=STR, overhead=mapof(QTY),
    topologySpreadConstraints=arr(SPREAD), volumes=arr(FREE, "name"), enableServiceLinks=BOOL,
    readinessGates=FREE, os=FREE, setHostnameAsFQDN=BOOL, schedulingGates=arr(obj(name=STR), "name"),
    resourceClaims=FREE, resources=RESOURCES,
)
CONDITION = obj(type=STR, status=STR, reason=STR, message=STR, lastTransitionTime=STR,
                lastProbeTime=STR, lastHeartbeatTime=STR, lastUpdateTime=STR, observedGeneration=NONNEG64)
POD_STATUS = obj(
    phase=STR, conditions=arr(CONDITION, "type"), message=STR, reason=STR, nominatedNodeName=STR,
    hostIP=STR, hostIPs=FREE, podIP=STR, podIPs=FREE, startTime=STR,
    containerStatuses=arr(FREE, "name"), initContainerStatuses=arr(FREE, "name"),
    ephemeralContainerStatuses=FREE, qosClass=STR, resize=STR, resourceClaimStatuses=FREE,
)
POD_TEMPLATE = obj(
    "A pod template: the metadata and spec of the pods made from it, as in a Deployment.",
    metadata=OBJECT_META, spec=POD_SPEC.doc("The pods' spec (a Pod's spec)."),
)


def kind_schema(spec: Schema | None = None, status: Schema | None = None, doc: str = "",
                **extra: Schema) -> Schema:
    props: dict[str, Schema] = {
        "apiVersion": string("The versioned schema of this object, e.g. v1 or sigma.io/v1."),
        "kind": string("The kind of this object, e.g. Pod or BatchJob."),
        "metadata": OBJECT_META,
    }
    if spec is not None:
        props["spec"] = spec
    if status is not None:
        props["status"] = status
    props.update(extra)
    return Schema("object", properties=props, description=doc)


NODE_SPEC = obj(podCIDR=STR, podCIDRs=STRS, providerID=STR, unschedulable=BOOL, taints=arr(TAINT),
                configSource=FREE, externalID=STR)
NODE_STATUS = obj(
    capacity=mapof(QTY), allocatable=mapof(QTY), phase=STR, conditions=arr(CONDITION, "type"),
    addresses=arr(obj(type=STR, address=STR), "type"), daemonEndpoints=FREE, nodeInfo=FREE,
    images=FREE, volumesInUse=FREE, volumesAttached=FREE, config=FREE, runtimeHandlers=FREE, features=FREE,
)
# maxSurge / maxUnavailable: a count or a percentage ("25%"); the percent form and the
# combined rules are checked by the Deployment's validator.
DEPLOYMENT_SPEC = obj(
    replicas=NONNEG32, selector=LABEL_SELECTOR, template=POD_TEMPLATE,
    strategy=obj(type=STR, rollingUpdate=obj(maxSurge=Schema("intorstring", minimum=0),
                                             maxUnavailable=Schema("intorstring", minimum=0))),
    minReadySeconds=NONNEG32, revisionHistoryLimit=NONNEG32, paused=BOOL, progressDeadlineSeconds=NONNEG32,
)
DEPLOYMENT_STATUS = obj(
    observedGeneration=NONNEG64, replicas=NONNEG32, updatedReplicas=NONNEG32, readyReplicas=NONNEG32,
    availableReplicas=NONNEG32, unavailableReplicas=NONNEG32, terminatingReplicas=NONNEG32,
    conditions=arr(CONDITION, "type"), collisionCount=NONNEG32,
)

KIND_SCHEMAS: dict[str, Schema] = {
    "Namespace": kind_schema(obj(finalizers=STRS), obj(phase=STR, conditions=arr(CONDITION, "type"))),
    "Node": kind_schema(NODE_SPEC, NODE_STATUS),
    "Pod": kind_schema(POD_SPEC, POD_STATUS),
    "Event": kind_schema(
        involvedObject=obj(kind=STR, namespace=STR, name=STR, uid=STR, apiVersion=STR,
                           resourceVersion=STR, fieldPath=STR),
        reason=STR, message=STR, source=obj(component=STR, host=STR), firstTimestamp=STR,
        lastTimestamp=STR, count=INT32, type=STR, eventTime=STR, series=FREE, action=STR, related=FREE,
        reportingComponent=STR, reportingInstance=STR,
    ),
    "ResourceQuota": kind_schema(obj(hard=mapof(QTY), scopes=STRS, scopeSelector=FREE),
                                 obj(hard=mapof(QTY), used=mapof(QTY))),
    "Deployment": kind_schema(DEPLOYMENT_SPEC, DEPLOYMENT_STATUS),
    "PriorityClass": kind_schema(value=INT32, globalDefault=BOOL, description=STR, preemptionPolicy=STR),
    "Lease": kind_schema(obj(holderIdentity=STR, leaseDurationSeconds=int32(minimum=1), acquireTime=STR,
                             renewTime=STR, leaseTransitions=NONNEG32, strategy=STR, preferredHolder=STR)),
    "Scale": kind_schema(obj(replicas=NONNEG32), obj(replicas=NONNEG32, selector=STR)),
    # Sigma's own kinds: placeholders that keep spec and status whole until their modules
    # register their schemas (sigma.api.admission.install imports them).
    "NodeMetric": kind_schema(FREE, FREE),
    "NodeSLO": kind_schema(FREE, FREE),
    "BatchJob": kind_schema(FREE, FREE),
    "PredictiveScaler": kind_schema(FREE, FREE),
    # Service and EndpointSlice: sigma.api.service_kinds registers their schemas.
    "Service": kind_schema(FREE, FREE),
    "EndpointSlice": kind_schema(addressType=STR, endpoints=FREE, ports=FREE),
    # ReplicaSet and DaemonSet: sigma.api.apps_kinds registers their schemas.
    "ReplicaSet": kind_schema(FREE, FREE),
    "DaemonSet": kind_schema(FREE, FREE),
    # Job, CronJob, PodDisruptionBudget: sigma.api.batch_kinds registers their schemas.
    "Job": kind_schema(FREE, FREE),
    "CronJob": kind_schema(FREE, FREE),
    "PodDisruptionBudget": kind_schema(FREE, FREE),
    # ConfigMap, Secret, ServiceAccount: sigma.api.configsecret_kinds registers their schemas.
    "ConfigMap": kind_schema(data=FREE, binaryData=FREE, immutable=BOOL),
    "Secret": kind_schema(data=FREE, stringData=FREE, type=STR, immutable=BOOL),
    "ServiceAccount": kind_schema(secrets=FREE, imagePullSecrets=FREE, automountServiceAccountToken=BOOL),
    # HorizontalPodAutoscaler: sigma.api.hpa_kinds registers its schema.
    "HorizontalPodAutoscaler": kind_schema(FREE, FREE),
    # RuntimeClass: sigma.api.runtimeclass_kinds registers its schema.
    "RuntimeClass": kind_schema(handler=STR, overhead=FREE, scheduling=FREE),
    # RBAC and the reviews: sigma.api.rbac_kinds registers their schemas.
    "Role": kind_schema(rules=FREE),
    "ClusterRole": kind_schema(rules=FREE, aggregationRule=FREE),
    "RoleBinding": kind_schema(roleRef=FREE, subjects=FREE),
    "ClusterRoleBinding": kind_schema(roleRef=FREE, subjects=FREE),
    "SelfSubjectAccessReview": kind_schema(FREE, FREE),
    "SubjectAccessReview": kind_schema(FREE, FREE),
    "SelfSubjectRulesReview": kind_schema(FREE, FREE),
    "SelfSubjectReview": kind_schema(status=FREE),
    # ControllerRevision: sigma.api.controllerrevision_kinds registers its schema.
    "ControllerRevision": kind_schema(data=FREE, revision=int64()),
}


def register_schema(kind: str, schema: Schema) -> None:
    """Sigma's own kinds register their schemas here (as their validators in sigma.api.validation)."""
    KIND_SCHEMAS[kind] = schema


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
    "quantity": (str, int, float), "intorstring": (int, str), "object": (dict,), "array": (list,),
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


# -- bounds -----------------------------------------------------------------------------


def bound_errors(value: Any, schema: Schema, path: str) -> list[tuple[str, str, str]]:
    """(path, message, reason) for every value outside its schema's bounds: integers outside
    int32/int64 or the field's minimum/maximum, numbers outside theirs, strings longer than
    their limit or outside their enum, lists with too many items. Values of the wrong type
    are left to ``type_errors``; Kubernetes' messages ("must be greater than or equal to 0",
    "must be between 1 and 65535, inclusive") and reasons."""
    errors: list[tuple[str, str, str]] = []
    _check_bounds(value, schema, path, errors)
    return errors


def _check_bounds(value: Any, schema: Schema, path: str, errors: list[tuple[str, str, str]]) -> None:
    if schema.type == "free" or value is None:
        return
    if isinstance(value, dict):
        if schema.type != "object":
            return
        for key, item in value.items():
            sub = schema.child(key)
            # Every write walks its object: subtrees without a bound anywhere are skipped.
            if sub is not None and item is not None and _has_bounds(sub):
                _check_bounds(item, sub, f"{path}.{key}" if path else key, errors)
    elif isinstance(value, list):
        if schema.type != "array" or schema.items is None:
            return
        if schema.max_items is not None and len(value) > schema.max_items:
            errors.append((path, f"Too many: {len(value)}: must have at most {schema.max_items} items",
                           "FieldValueTooMany"))
        for i, item in enumerate(value):
            _check_bounds(item, schema.items, f"{path}[{i}]", errors)
    elif isinstance(value, str):
        _check_string(value, schema, path, errors)
    elif _is_number(value) and (schema.type in ("integer", "number")
                                or (schema.type == "intorstring" and isinstance(value, int))):
        message = range_error(value, schema)
        if message:
            errors.append((path, f"Invalid value: {_number_text(value)}: {message}", "FieldValueInvalid"))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_BOUNDED: dict[int, bool] = {}  # by id(): the schemas are module constants, alive as long as the process


def _has_bounds(schema: Schema) -> bool:
    """Whether the schema or anything under it has a bound to check."""
    known = _BOUNDED.get(id(schema))
    if known is None:
        own = (schema.type in ("integer", "number", "intorstring") or schema.max_length is not None
               or schema.max_items is not None or bool(schema.enum))
        subs = [*schema.properties.values(), *(s for s in (schema.items, schema.values) if s is not None)]
        known = own or any(_has_bounds(sub) for sub in subs)
        _BOUNDED[id(schema)] = known
    return known


def _check_string(value: str, schema: Schema, path: str, errors: list[tuple[str, str, str]]) -> None:
    if schema.type != "string":
        return
    if schema.max_length is not None and len(value) > schema.max_length:
        errors.append((path, f"Too long: may not be more than {schema.max_length} characters", "FieldValueTooLong"))
    elif schema.enum and value not in schema.enum:
        supported = ", ".join(f'"{v}"' for v in schema.enum)
        errors.append((path, f'Unsupported value: "{value}": supported values: {supported}',
                       "FieldValueNotSupported"))


def range_error(value: float, schema: Schema) -> str:
    """Kubernetes' message for a number outside the schema's range, or ""."""
    low, high = _limits(schema)
    if (low is None or value >= low) and (high is None or value <= high):
        return ""
    if schema.minimum is not None and schema.maximum is not None:
        return f"must be between {_number_text(low)} and {_number_text(high)}, inclusive"
    if low is not None and value < low:
        return f"must be greater than or equal to {_number_text(low)}"
    return f"must be less than or equal to {_number_text(high)}"


def _limits(schema: Schema) -> tuple[float | None, float | None]:
    floor, ceiling = _FORMAT_RANGE.get(schema.format, (None, None))
    if schema.type == "intorstring":
        floor, ceiling = INT32_MIN, INT32_MAX
    low = schema.minimum if schema.minimum is not None else floor
    high = schema.maximum if schema.maximum is not None else ceiling
    return low, high


def _number_text(value: float | None) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


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
