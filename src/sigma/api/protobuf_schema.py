"""Field tables of the Kubernetes protobuf messages Sigma accepts as request bodies.

The field numbers and types are those of the ``generated.proto`` files of Kubernetes 1.32
(k8s.io/api and k8s.io/apimachinery), the release of the kubectl Sigma is tested with; a
field number never changes meaning across Kubernetes releases, so older and newer clients
decode the same way. Proto field names equal the JSON names, so each table also says what
the JSON object looks like.

Every message reachable from a served kind is listed (the whole PodSpec, volumes and
probes included), because Sigma stores subtrees it does not interpret exactly as sent.
Messages with a JSON form of their own are not tables but kinds: Time, MicroTime,
Quantity, IntOrString and FieldsV1. Map fields (labels, resource lists...) are repeated
entry messages on the wire (key = 1, value = 2) and appear here as MAP_STR / MAP_QUANTITY.

``inline`` marks the Go structs embedded with ``json:",inline"`` (Volume's VolumeSource,
Probe's ProbeHandler, the LocalObjectReference of config map and secret selectors...): a
nested message on the wire, but their fields sit in the parent's JSON object.

``keep_zero`` marks the fields where a zero value means something: Go pointers
(``replicas: 0``, ``automountServiceAccountToken: false``) and fields without
``omitempty``. Go's protobuf encoder writes every non-pointer scalar even when it is zero,
while its JSON encoder omits zero ``omitempty`` fields; dropping zeros everywhere else
makes the decoded object what the client would have sent as JSON.
"""

from __future__ import annotations

from typing import NamedTuple

# Field kinds. A message-typed field has kind MESSAGE and names its table in message_type;
# a map field has kind MAP and names the kind of its values in message_type.
STR, INT, BOOL, BYTES = "string", "int", "bool", "bytes"
MESSAGE, MAP = "message", "map"
TIME, MICROTIME = "time", "microtime"  # meta/v1 Time, MicroTime: {seconds = 1, nanos = 2}
QUANTITY = "quantity"  # resource.Quantity: {string = 1}
INT_OR_STRING = "intorstring"  # intstr.IntOrString: {type = 1, intVal = 2, strVal = 3}
RAW_JSON = "rawjson"  # meta/v1 FieldsV1: {Raw = 1}, the JSON document itself
MAP_STR, MAP_QUANTITY = "map<string>", "map<quantity>"
MAP_BYTES = "map<bytes>"  # Secret.data, ConfigMap.binaryData: base64 in JSON
REPEATED = True

SCALAR_KINDS = frozenset({STR, INT, BOOL, BYTES, TIME, MICROTIME, QUANTITY, INT_OR_STRING, RAW_JSON})


class Field(NamedTuple):
    json_name: str
    kind: str
    repeated: bool
    message_type: str | None
    keep_zero: bool
    inline: bool


def F(json_name: str, kind: str, repeated: bool = False, keep_zero: bool = False,
      inline: bool = False) -> Field:
    """A table entry: ``kind`` is a field kind above or the name of another table."""
    if kind == MAP_STR:
        return Field(json_name, MAP, False, STR, keep_zero, inline)
    if kind == MAP_QUANTITY:
        return Field(json_name, MAP, False, QUANTITY, keep_zero, inline)
    if kind == MAP_BYTES:
        return Field(json_name, MAP, False, BYTES, keep_zero, inline)
    if kind in SCALAR_KINDS:
        return Field(json_name, kind, repeated, None, keep_zero, inline)
    return Field(json_name, MESSAGE, repeated, kind, keep_zero, inline)


# The message in an envelope's ``raw``, by the envelope's apiVersion and kind.
KINDS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "Pod"): "Pod",
    ("v1", "Node"): "Node",
    ("v1", "Event"): "Event",
    ("v1", "Binding"): "Binding",
    ("apps/v1", "Deployment"): "Deployment",
    ("scheduling.k8s.io/v1", "PriorityClass"): "PriorityClass",
    ("node.k8s.io/v1", "RuntimeClass"): "RuntimeClass",
    ("coordination.k8s.io/v1", "Lease"): "Lease",
    ("autoscaling/v1", "Scale"): "Scale",
    ("policy/v1", "Eviction"): "Eviction",
    ("policy/v1beta1", "Eviction"): "Eviction",  # same message in both versions
}
# DeleteOptions is registered in every group version, so a client may tag it with any
# apiVersion (the group of the object it deletes, or meta.k8s.io/v1).
ANY_VERSION_KINDS: dict[str, str] = {"DeleteOptions": "DeleteOptions"}

MESSAGES: dict[str, dict[int, Field]] = {
    "AWSElasticBlockStoreVolumeSource": {
        1: F("volumeID", STR), 2: F("fsType", STR), 3: F("partition", INT), 4: F("readOnly", BOOL),
    },
    "Affinity": {
        1: F("nodeAffinity", "NodeAffinity"), 2: F("podAffinity", "PodAffinity"),
        3: F("podAntiAffinity", "PodAntiAffinity"),
    },
    "AppArmorProfile": {1: F("type", STR), 2: F("localhostProfile", STR)},
    "AttachedVolume": {1: F("name", STR), 2: F("devicePath", STR)},
    "AzureDiskVolumeSource": {
        1: F("diskName", STR), 2: F("diskURI", STR), 3: F("cachingMode", STR), 4: F("fsType", STR),
        5: F("readOnly", BOOL), 6: F("kind", STR),
    },
    "AzureFileVolumeSource": {1: F("secretName", STR), 2: F("shareName", STR), 3: F("readOnly", BOOL)},
    "Binding": {1: F("metadata", "ObjectMeta"), 2: F("target", "ObjectReference")},
    "CSIVolumeSource": {
        1: F("driver", STR), 2: F("readOnly", BOOL, keep_zero=True), 3: F("fsType", STR),
        4: F("volumeAttributes", MAP_STR), 5: F("nodePublishSecretRef", "LocalObjectReference"),
    },
    "Capabilities": {1: F("add", STR, REPEATED), 2: F("drop", STR, REPEATED)},
    "CephFSVolumeSource": {
        1: F("monitors", STR, REPEATED), 2: F("path", STR), 3: F("user", STR), 4: F("secretFile", STR),
        5: F("secretRef", "LocalObjectReference"), 6: F("readOnly", BOOL),
    },
    "CinderVolumeSource": {
        1: F("volumeID", STR), 2: F("fsType", STR), 3: F("readOnly", BOOL),
        4: F("secretRef", "LocalObjectReference"),
    },
    "ClusterTrustBundleProjection": {
        1: F("name", STR), 2: F("signerName", STR), 3: F("labelSelector", "LabelSelector"),
        4: F("path", STR), 5: F("optional", BOOL, keep_zero=True),
    },
    "ConfigMapEnvSource": {
        1: F("localObjectReference", "LocalObjectReference", inline=True),
        2: F("optional", BOOL, keep_zero=True),
    },
    "ConfigMapKeySelector": {
        1: F("localObjectReference", "LocalObjectReference", inline=True), 2: F("key", STR),
        3: F("optional", BOOL, keep_zero=True),
    },
    "ConfigMapNodeConfigSource": {
        1: F("namespace", STR), 2: F("name", STR), 3: F("uid", STR), 4: F("resourceVersion", STR),
        5: F("kubeletConfigKey", STR),
    },
    "ConfigMapProjection": {
        1: F("localObjectReference", "LocalObjectReference", inline=True),
        2: F("items", "KeyToPath", REPEATED), 4: F("optional", BOOL, keep_zero=True),
    },
    "ConfigMapVolumeSource": {
        1: F("localObjectReference", "LocalObjectReference", inline=True),
        2: F("items", "KeyToPath", REPEATED), 3: F("defaultMode", INT, keep_zero=True),
        4: F("optional", BOOL, keep_zero=True),
    },
    "Container": {
        1: F("name", STR), 2: F("image", STR), 3: F("command", STR, REPEATED), 4: F("args", STR, REPEATED),
        5: F("workingDir", STR), 6: F("ports", "ContainerPort", REPEATED), 7: F("env", "EnvVar", REPEATED),
        8: F("resources", "ResourceRequirements"), 9: F("volumeMounts", "VolumeMount", REPEATED),
        10: F("livenessProbe", "Probe"), 11: F("readinessProbe", "Probe"), 12: F("lifecycle", "Lifecycle"),
        13: F("terminationMessagePath", STR), 14: F("imagePullPolicy", STR),
        15: F("securityContext", "SecurityContext"), 16: F("stdin", BOOL), 17: F("stdinOnce", BOOL),
        18: F("tty", BOOL), 19: F("envFrom", "EnvFromSource", REPEATED),
        20: F("terminationMessagePolicy", STR), 21: F("volumeDevices", "VolumeDevice", REPEATED),
        22: F("startupProbe", "Probe"), 23: F("resizePolicy", "ContainerResizePolicy", REPEATED),
        24: F("restartPolicy", STR),
    },
    "ContainerImage": {1: F("names", STR, REPEATED), 2: F("sizeBytes", INT)},
    "ContainerPort": {
        1: F("name", STR), 2: F("hostPort", INT), 3: F("containerPort", INT, keep_zero=True),
        4: F("protocol", STR), 5: F("hostIP", STR),
    },
    "ContainerResizePolicy": {1: F("resourceName", STR), 2: F("restartPolicy", STR)},
    "ContainerState": {
        1: F("waiting", "ContainerStateWaiting"), 2: F("running", "ContainerStateRunning"),
        3: F("terminated", "ContainerStateTerminated"),
    },
    "ContainerStateRunning": {1: F("startedAt", TIME)},
    "ContainerStateTerminated": {
        1: F("exitCode", INT, keep_zero=True), 2: F("signal", INT), 3: F("reason", STR),
        4: F("message", STR), 5: F("startedAt", TIME), 6: F("finishedAt", TIME), 7: F("containerID", STR),
    },
    "ContainerStateWaiting": {1: F("reason", STR), 2: F("message", STR)},
    "ContainerStatus": {
        1: F("name", STR), 2: F("state", "ContainerState"), 3: F("lastState", "ContainerState"),
        4: F("ready", BOOL, keep_zero=True), 5: F("restartCount", INT, keep_zero=True), 6: F("image", STR),
        7: F("imageID", STR), 8: F("containerID", STR), 9: F("started", BOOL, keep_zero=True),
        10: F("allocatedResources", MAP_QUANTITY), 11: F("resources", "ResourceRequirements"),
        12: F("volumeMounts", "VolumeMountStatus", REPEATED), 13: F("user", "ContainerUser"),
        14: F("allocatedResourcesStatus", "ResourceStatus", REPEATED),
    },
    "ContainerUser": {1: F("linux", "LinuxContainerUser")},
    "DaemonEndpoint": {1: F("Port", INT, keep_zero=True)},
    "DeleteOptions": {
        1: F("gracePeriodSeconds", INT, keep_zero=True), 2: F("preconditions", "Preconditions"),
        3: F("orphanDependents", BOOL, keep_zero=True), 4: F("propagationPolicy", STR),
        5: F("dryRun", STR, REPEATED),
        6: F("ignoreStoreReadErrorWithClusterBreakingPotential", BOOL, keep_zero=True),
    },
    "Deployment": {
        1: F("metadata", "ObjectMeta"), 2: F("spec", "DeploymentSpec"), 3: F("status", "DeploymentStatus"),
    },
    "DeploymentCondition": {
        1: F("type", STR), 2: F("status", STR), 4: F("reason", STR), 5: F("message", STR),
        6: F("lastUpdateTime", TIME), 7: F("lastTransitionTime", TIME),
    },
    "DeploymentSpec": {
        1: F("replicas", INT, keep_zero=True), 2: F("selector", "LabelSelector"),
        3: F("template", "PodTemplateSpec"), 4: F("strategy", "DeploymentStrategy"),
        5: F("minReadySeconds", INT), 6: F("revisionHistoryLimit", INT, keep_zero=True),
        7: F("paused", BOOL), 9: F("progressDeadlineSeconds", INT, keep_zero=True),
    },
    "DeploymentStatus": {
        1: F("observedGeneration", INT), 2: F("replicas", INT), 3: F("updatedReplicas", INT),
        4: F("availableReplicas", INT), 5: F("unavailableReplicas", INT),
        6: F("conditions", "DeploymentCondition", REPEATED), 7: F("readyReplicas", INT),
        8: F("collisionCount", INT, keep_zero=True),
    },
    "DeploymentStrategy": {1: F("type", STR), 2: F("rollingUpdate", "RollingUpdateDeployment")},
    "DownwardAPIProjection": {1: F("items", "DownwardAPIVolumeFile", REPEATED)},
    "DownwardAPIVolumeFile": {
        1: F("path", STR), 2: F("fieldRef", "ObjectFieldSelector"),
        3: F("resourceFieldRef", "ResourceFieldSelector"), 4: F("mode", INT, keep_zero=True),
    },
    "DownwardAPIVolumeSource": {
        1: F("items", "DownwardAPIVolumeFile", REPEATED), 2: F("defaultMode", INT, keep_zero=True),
    },
    "EmptyDirVolumeSource": {1: F("medium", STR), 2: F("sizeLimit", QUANTITY)},
    "EnvFromSource": {
        1: F("prefix", STR), 2: F("configMapRef", "ConfigMapEnvSource"),
        3: F("secretRef", "SecretEnvSource"),
    },
    "EnvVar": {1: F("name", STR), 2: F("value", STR), 3: F("valueFrom", "EnvVarSource")},
    "EnvVarSource": {
        1: F("fieldRef", "ObjectFieldSelector"), 2: F("resourceFieldRef", "ResourceFieldSelector"),
        3: F("configMapKeyRef", "ConfigMapKeySelector"), 4: F("secretKeyRef", "SecretKeySelector"),
    },
    "EphemeralContainer": {
        1: F("ephemeralContainerCommon", "EphemeralContainerCommon", inline=True),
        2: F("targetContainerName", STR),
    },
    "EphemeralContainerCommon": {
        1: F("name", STR), 2: F("image", STR), 3: F("command", STR, REPEATED), 4: F("args", STR, REPEATED),
        5: F("workingDir", STR), 6: F("ports", "ContainerPort", REPEATED), 7: F("env", "EnvVar", REPEATED),
        8: F("resources", "ResourceRequirements"), 9: F("volumeMounts", "VolumeMount", REPEATED),
        10: F("livenessProbe", "Probe"), 11: F("readinessProbe", "Probe"), 12: F("lifecycle", "Lifecycle"),
        13: F("terminationMessagePath", STR), 14: F("imagePullPolicy", STR),
        15: F("securityContext", "SecurityContext"), 16: F("stdin", BOOL), 17: F("stdinOnce", BOOL),
        18: F("tty", BOOL), 19: F("envFrom", "EnvFromSource", REPEATED),
        20: F("terminationMessagePolicy", STR), 21: F("volumeDevices", "VolumeDevice", REPEATED),
        22: F("startupProbe", "Probe"), 23: F("resizePolicy", "ContainerResizePolicy", REPEATED),
        24: F("restartPolicy", STR),
    },
    "EphemeralVolumeSource": {1: F("volumeClaimTemplate", "PersistentVolumeClaimTemplate")},
    "Event": {
        1: F("metadata", "ObjectMeta"), 2: F("involvedObject", "ObjectReference"), 3: F("reason", STR),
        4: F("message", STR), 5: F("source", "EventSource"), 6: F("firstTimestamp", TIME),
        7: F("lastTimestamp", TIME), 8: F("count", INT), 9: F("type", STR), 10: F("eventTime", MICROTIME),
        11: F("series", "EventSeries"), 12: F("action", STR), 13: F("related", "ObjectReference"),
        14: F("reportingComponent", STR), 15: F("reportingInstance", STR),
    },
    "EventSeries": {1: F("count", INT), 2: F("lastObservedTime", MICROTIME)},
    "EventSource": {1: F("component", STR), 2: F("host", STR)},
    "Eviction": {1: F("metadata", "ObjectMeta"), 2: F("deleteOptions", "DeleteOptions")},
    "ExecAction": {1: F("command", STR, REPEATED)},
    "FCVolumeSource": {
        1: F("targetWWNs", STR, REPEATED), 2: F("lun", INT), 3: F("fsType", STR), 4: F("readOnly", BOOL),
        5: F("wwids", STR, REPEATED),
    },
    "FlexVolumeSource": {
        1: F("driver", STR), 2: F("fsType", STR), 3: F("secretRef", "LocalObjectReference"),
        4: F("readOnly", BOOL), 5: F("options", MAP_STR),
    },
    "FlockerVolumeSource": {1: F("datasetName", STR), 2: F("datasetUUID", STR)},
    "GCEPersistentDiskVolumeSource": {
        1: F("pdName", STR), 2: F("fsType", STR), 3: F("partition", INT), 4: F("readOnly", BOOL),
    },
    "GRPCAction": {1: F("port", INT, keep_zero=True), 2: F("service", STR)},
    "GitRepoVolumeSource": {1: F("repository", STR), 2: F("revision", STR), 3: F("directory", STR)},
    "GlusterfsVolumeSource": {1: F("endpoints", STR), 2: F("path", STR), 3: F("readOnly", BOOL)},
    "HTTPGetAction": {
        1: F("path", STR), 2: F("port", INT_OR_STRING), 3: F("host", STR), 4: F("scheme", STR),
        5: F("httpHeaders", "HTTPHeader", REPEATED),
    },
    "HTTPHeader": {1: F("name", STR), 2: F("value", STR)},
    "HostAlias": {1: F("ip", STR), 2: F("hostnames", STR, REPEATED)},
    "HostIP": {1: F("ip", STR)},
    "HostPathVolumeSource": {1: F("path", STR), 2: F("type", STR)},
    "ISCSIVolumeSource": {
        1: F("targetPortal", STR), 2: F("iqn", STR), 3: F("lun", INT, keep_zero=True),
        4: F("iscsiInterface", STR), 5: F("fsType", STR), 6: F("readOnly", BOOL),
        7: F("portals", STR, REPEATED), 8: F("chapAuthDiscovery", BOOL),
        10: F("secretRef", "LocalObjectReference"), 11: F("chapAuthSession", BOOL),
        12: F("initiatorName", STR),
    },
    "ImageVolumeSource": {1: F("reference", STR), 2: F("pullPolicy", STR)},
    "KeyToPath": {1: F("key", STR), 2: F("path", STR), 3: F("mode", INT, keep_zero=True)},
    "LabelSelector": {
        1: F("matchLabels", MAP_STR), 2: F("matchExpressions", "LabelSelectorRequirement", REPEATED),
    },
    "LabelSelectorRequirement": {1: F("key", STR), 2: F("operator", STR), 3: F("values", STR, REPEATED)},
    "Lease": {1: F("metadata", "ObjectMeta"), 2: F("spec", "LeaseSpec")},
    "LeaseSpec": {
        1: F("holderIdentity", STR), 2: F("leaseDurationSeconds", INT, keep_zero=True),
        3: F("acquireTime", MICROTIME), 4: F("renewTime", MICROTIME),
        5: F("leaseTransitions", INT, keep_zero=True), 6: F("strategy", STR), 7: F("preferredHolder", STR),
    },
    "Lifecycle": {1: F("postStart", "LifecycleHandler"), 2: F("preStop", "LifecycleHandler")},
    "LifecycleHandler": {
        1: F("exec", "ExecAction"), 2: F("httpGet", "HTTPGetAction"), 3: F("tcpSocket", "TCPSocketAction"),
        4: F("sleep", "SleepAction"),
    },
    "LinuxContainerUser": {
        1: F("uid", INT, keep_zero=True), 2: F("gid", INT, keep_zero=True),
        3: F("supplementalGroups", INT, REPEATED),
    },
    "LocalObjectReference": {1: F("name", STR)},
    "ManagedFieldsEntry": {
        1: F("manager", STR), 2: F("operation", STR), 3: F("apiVersion", STR), 4: F("time", TIME),
        6: F("fieldsType", STR), 7: F("fieldsV1", RAW_JSON), 8: F("subresource", STR),
    },
    "NFSVolumeSource": {1: F("server", STR), 2: F("path", STR), 3: F("readOnly", BOOL)},
    "Namespace": {
        1: F("metadata", "ObjectMeta"), 2: F("spec", "NamespaceSpec"), 3: F("status", "NamespaceStatus"),
    },
    "NamespaceCondition": {
        1: F("type", STR), 2: F("status", STR), 4: F("lastTransitionTime", TIME), 5: F("reason", STR),
        6: F("message", STR),
    },
    "NamespaceSpec": {1: F("finalizers", STR, REPEATED)},
    "NamespaceStatus": {1: F("phase", STR), 2: F("conditions", "NamespaceCondition", REPEATED)},
    "Node": {1: F("metadata", "ObjectMeta"), 2: F("spec", "NodeSpec"), 3: F("status", "NodeStatus")},
    "NodeAddress": {1: F("type", STR), 2: F("address", STR)},
    "NodeAffinity": {
        1: F("requiredDuringSchedulingIgnoredDuringExecution", "NodeSelector"),
        2: F("preferredDuringSchedulingIgnoredDuringExecution", "PreferredSchedulingTerm", REPEATED),
    },
    "NodeCondition": {
        1: F("type", STR), 2: F("status", STR), 3: F("lastHeartbeatTime", TIME),
        4: F("lastTransitionTime", TIME), 5: F("reason", STR), 6: F("message", STR),
    },
    "NodeConfigSource": {2: F("configMap", "ConfigMapNodeConfigSource")},
    "NodeConfigStatus": {
        1: F("assigned", "NodeConfigSource"), 2: F("active", "NodeConfigSource"),
        3: F("lastKnownGood", "NodeConfigSource"), 4: F("error", STR),
    },
    "NodeDaemonEndpoints": {1: F("kubeletEndpoint", "DaemonEndpoint")},
    "NodeFeatures": {1: F("supplementalGroupsPolicy", BOOL)},
    "NodeRuntimeHandler": {1: F("name", STR), 2: F("features", "NodeRuntimeHandlerFeatures")},
    "NodeRuntimeHandlerFeatures": {1: F("recursiveReadOnlyMounts", BOOL), 2: F("userNamespaces", BOOL)},
    "NodeSelector": {1: F("nodeSelectorTerms", "NodeSelectorTerm", REPEATED)},
    "NodeSelectorRequirement": {1: F("key", STR), 2: F("operator", STR), 3: F("values", STR, REPEATED)},
    "NodeSelectorTerm": {
        1: F("matchExpressions", "NodeSelectorRequirement", REPEATED),
        2: F("matchFields", "NodeSelectorRequirement", REPEATED),
    },
    "NodeSpec": {
        1: F("podCIDR", STR), 2: F("externalID", STR), 3: F("providerID", STR), 4: F("unschedulable", BOOL),
        5: F("taints", "Taint", REPEATED), 6: F("configSource", "NodeConfigSource"),
        7: F("podCIDRs", STR, REPEATED),
    },
    "NodeStatus": {
        1: F("capacity", MAP_QUANTITY), 2: F("allocatable", MAP_QUANTITY), 3: F("phase", STR),
        4: F("conditions", "NodeCondition", REPEATED), 5: F("addresses", "NodeAddress", REPEATED),
        6: F("daemonEndpoints", "NodeDaemonEndpoints"), 7: F("nodeInfo", "NodeSystemInfo"),
        8: F("images", "ContainerImage", REPEATED), 9: F("volumesInUse", STR, REPEATED),
        10: F("volumesAttached", "AttachedVolume", REPEATED), 11: F("config", "NodeConfigStatus"),
        12: F("runtimeHandlers", "NodeRuntimeHandler", REPEATED), 13: F("features", "NodeFeatures"),
    },
    "NodeSystemInfo": {
        1: F("machineID", STR), 2: F("systemUUID", STR), 3: F("bootID", STR), 4: F("kernelVersion", STR),
        5: F("osImage", STR), 6: F("containerRuntimeVersion", STR), 7: F("kubeletVersion", STR),
        8: F("kubeProxyVersion", STR), 9: F("operatingSystem", STR), 10: F("architecture", STR),
    },
    "ObjectFieldSelector": {1: F("apiVersion", STR), 2: F("fieldPath", STR)},
    "ObjectMeta": {
        1: F("name", STR), 2: F("generateName", STR), 3: F("namespace", STR), 4: F("selfLink", STR),
        5: F("uid", STR), 6: F("resourceVersion", STR), 7: F("generation", INT),
        8: F("creationTimestamp", TIME), 9: F("deletionTimestamp", TIME),
        10: F("deletionGracePeriodSeconds", INT, keep_zero=True), 11: F("labels", MAP_STR),
        12: F("annotations", MAP_STR), 13: F("ownerReferences", "OwnerReference", REPEATED),
        14: F("finalizers", STR, REPEATED), 17: F("managedFields", "ManagedFieldsEntry", REPEATED),
    },
    "ObjectReference": {
        1: F("kind", STR), 2: F("namespace", STR), 3: F("name", STR), 4: F("uid", STR),
        5: F("apiVersion", STR), 6: F("resourceVersion", STR), 7: F("fieldPath", STR),
    },
    "OwnerReference": {
        1: F("kind", STR), 3: F("name", STR), 4: F("uid", STR), 5: F("apiVersion", STR),
        6: F("controller", BOOL, keep_zero=True), 7: F("blockOwnerDeletion", BOOL, keep_zero=True),
    },
    "PersistentVolumeClaimSpec": {
        1: F("accessModes", STR, REPEATED), 2: F("resources", "VolumeResourceRequirements"),
        3: F("volumeName", STR), 4: F("selector", "LabelSelector"), 5: F("storageClassName", STR),
        6: F("volumeMode", STR), 7: F("dataSource", "TypedLocalObjectReference"),
        8: F("dataSourceRef", "TypedObjectReference"), 9: F("volumeAttributesClassName", STR),
    },
    "PersistentVolumeClaimTemplate": {
        1: F("metadata", "ObjectMeta"), 2: F("spec", "PersistentVolumeClaimSpec"),
    },
    "PersistentVolumeClaimVolumeSource": {1: F("claimName", STR), 2: F("readOnly", BOOL)},
    "PhotonPersistentDiskVolumeSource": {1: F("pdID", STR), 2: F("fsType", STR)},
    "Pod": {1: F("metadata", "ObjectMeta"), 2: F("spec", "PodSpec"), 3: F("status", "PodStatus")},
    "PodAffinity": {
        1: F("requiredDuringSchedulingIgnoredDuringExecution", "PodAffinityTerm", REPEATED),
        2: F("preferredDuringSchedulingIgnoredDuringExecution", "WeightedPodAffinityTerm", REPEATED),
    },
    "PodAffinityTerm": {
        1: F("labelSelector", "LabelSelector"), 2: F("namespaces", STR, REPEATED), 3: F("topologyKey", STR),
        4: F("namespaceSelector", "LabelSelector"), 5: F("matchLabelKeys", STR, REPEATED),
        6: F("mismatchLabelKeys", STR, REPEATED),
    },
    "PodAntiAffinity": {
        1: F("requiredDuringSchedulingIgnoredDuringExecution", "PodAffinityTerm", REPEATED),
        2: F("preferredDuringSchedulingIgnoredDuringExecution", "WeightedPodAffinityTerm", REPEATED),
    },
    "PodCondition": {
        1: F("type", STR), 2: F("status", STR), 3: F("lastProbeTime", TIME),
        4: F("lastTransitionTime", TIME), 5: F("reason", STR), 6: F("message", STR),
    },
    "PodDNSConfig": {
        1: F("nameservers", STR, REPEATED), 2: F("searches", STR, REPEATED),
        3: F("options", "PodDNSConfigOption", REPEATED),
    },
    "PodDNSConfigOption": {1: F("name", STR), 2: F("value", STR)},
    "PodIP": {1: F("ip", STR)},
    "PodOS": {1: F("name", STR)},
    "PodReadinessGate": {1: F("conditionType", STR)},
    "PodResourceClaim": {
        1: F("name", STR), 3: F("resourceClaimName", STR), 4: F("resourceClaimTemplateName", STR),
    },
    "PodResourceClaimStatus": {1: F("name", STR), 2: F("resourceClaimName", STR)},
    "PodSchedulingGate": {1: F("name", STR)},
    "PodSecurityContext": {
        1: F("seLinuxOptions", "SELinuxOptions"), 2: F("runAsUser", INT, keep_zero=True),
        3: F("runAsNonRoot", BOOL, keep_zero=True), 4: F("supplementalGroups", INT, REPEATED),
        5: F("fsGroup", INT, keep_zero=True), 6: F("runAsGroup", INT, keep_zero=True),
        7: F("sysctls", "Sysctl", REPEATED), 8: F("windowsOptions", "WindowsSecurityContextOptions"),
        9: F("fsGroupChangePolicy", STR), 10: F("seccompProfile", "SeccompProfile"),
        11: F("appArmorProfile", "AppArmorProfile"), 12: F("supplementalGroupsPolicy", STR),
        13: F("seLinuxChangePolicy", STR),
    },
    "PodSpec": {
        1: F("volumes", "Volume", REPEATED), 2: F("containers", "Container", REPEATED),
        3: F("restartPolicy", STR), 4: F("terminationGracePeriodSeconds", INT, keep_zero=True),
        5: F("activeDeadlineSeconds", INT, keep_zero=True), 6: F("dnsPolicy", STR),
        7: F("nodeSelector", MAP_STR), 8: F("serviceAccountName", STR), 9: F("serviceAccount", STR),
        10: F("nodeName", STR), 11: F("hostNetwork", BOOL), 12: F("hostPID", BOOL), 13: F("hostIPC", BOOL),
        14: F("securityContext", "PodSecurityContext"),
        15: F("imagePullSecrets", "LocalObjectReference", REPEATED), 16: F("hostname", STR),
        17: F("subdomain", STR), 18: F("affinity", "Affinity"), 19: F("schedulerName", STR),
        20: F("initContainers", "Container", REPEATED),
        21: F("automountServiceAccountToken", BOOL, keep_zero=True),
        22: F("tolerations", "Toleration", REPEATED), 23: F("hostAliases", "HostAlias", REPEATED),
        24: F("priorityClassName", STR), 25: F("priority", INT, keep_zero=True),
        26: F("dnsConfig", "PodDNSConfig"), 27: F("shareProcessNamespace", BOOL, keep_zero=True),
        28: F("readinessGates", "PodReadinessGate", REPEATED), 29: F("runtimeClassName", STR),
        30: F("enableServiceLinks", BOOL, keep_zero=True), 31: F("preemptionPolicy", STR),
        32: F("overhead", MAP_QUANTITY),
        33: F("topologySpreadConstraints", "TopologySpreadConstraint", REPEATED),
        34: F("ephemeralContainers", "EphemeralContainer", REPEATED),
        35: F("setHostnameAsFQDN", BOOL, keep_zero=True), 36: F("os", "PodOS"),
        37: F("hostUsers", BOOL, keep_zero=True), 38: F("schedulingGates", "PodSchedulingGate", REPEATED),
        39: F("resourceClaims", "PodResourceClaim", REPEATED), 40: F("resources", "ResourceRequirements"),
    },
    "PodStatus": {
        1: F("phase", STR), 2: F("conditions", "PodCondition", REPEATED), 3: F("message", STR),
        4: F("reason", STR), 5: F("hostIP", STR), 6: F("podIP", STR), 7: F("startTime", TIME),
        8: F("containerStatuses", "ContainerStatus", REPEATED), 9: F("qosClass", STR),
        10: F("initContainerStatuses", "ContainerStatus", REPEATED), 11: F("nominatedNodeName", STR),
        12: F("podIPs", "PodIP", REPEATED), 13: F("ephemeralContainerStatuses", "ContainerStatus", REPEATED),
        14: F("resize", STR), 15: F("resourceClaimStatuses", "PodResourceClaimStatus", REPEATED),
        16: F("hostIPs", "HostIP", REPEATED),
    },
    "PodTemplateSpec": {1: F("metadata", "ObjectMeta"), 2: F("spec", "PodSpec")},
    "PortworxVolumeSource": {1: F("volumeID", STR), 2: F("fsType", STR), 3: F("readOnly", BOOL)},
    "Preconditions": {1: F("uid", STR), 2: F("resourceVersion", STR)},
    "PreferredSchedulingTerm": {1: F("weight", INT, keep_zero=True), 2: F("preference", "NodeSelectorTerm")},
    "PriorityClass": {
        1: F("metadata", "ObjectMeta"), 2: F("value", INT, keep_zero=True), 3: F("globalDefault", BOOL),
        4: F("description", STR), 5: F("preemptionPolicy", STR),
    },
    # node.k8s.io/v1 RuntimeClass, Overhead, Scheduling (k8s.io/api/node/v1/generated.proto)
    "RuntimeClass": {
        1: F("metadata", "ObjectMeta"), 2: F("handler", STR), 3: F("overhead", "RuntimeClassOverhead"),
        4: F("scheduling", "RuntimeClassScheduling"),
    },
    "RuntimeClassOverhead": {1: F("podFixed", MAP_QUANTITY)},
    "RuntimeClassScheduling": {1: F("nodeSelector", MAP_STR), 2: F("tolerations", "Toleration", REPEATED)},
    "Probe": {
        1: F("handler", "ProbeHandler", inline=True), 2: F("initialDelaySeconds", INT),
        3: F("timeoutSeconds", INT), 4: F("periodSeconds", INT), 5: F("successThreshold", INT),
        6: F("failureThreshold", INT), 7: F("terminationGracePeriodSeconds", INT, keep_zero=True),
    },
    "ProbeHandler": {
        1: F("exec", "ExecAction"), 2: F("httpGet", "HTTPGetAction"), 3: F("tcpSocket", "TCPSocketAction"),
        4: F("grpc", "GRPCAction"),
    },
    "ProjectedVolumeSource": {
        1: F("sources", "VolumeProjection", REPEATED), 2: F("defaultMode", INT, keep_zero=True),
    },
    "QuobyteVolumeSource": {
        1: F("registry", STR), 2: F("volume", STR), 3: F("readOnly", BOOL), 4: F("user", STR),
        5: F("group", STR), 6: F("tenant", STR),
    },
    "RBDVolumeSource": {
        1: F("monitors", STR, REPEATED), 2: F("image", STR), 3: F("fsType", STR), 4: F("pool", STR),
        5: F("user", STR), 6: F("keyring", STR), 7: F("secretRef", "LocalObjectReference"),
        8: F("readOnly", BOOL),
    },
    "ResourceClaim": {1: F("name", STR), 2: F("request", STR)},
    "ResourceFieldSelector": {1: F("containerName", STR), 2: F("resource", STR), 3: F("divisor", QUANTITY)},
    "ResourceHealth": {1: F("resourceID", STR), 2: F("health", STR)},
    "ResourceRequirements": {
        1: F("limits", MAP_QUANTITY), 2: F("requests", MAP_QUANTITY),
        3: F("claims", "ResourceClaim", REPEATED),
    },
    "ResourceStatus": {1: F("name", STR), 2: F("resources", "ResourceHealth", REPEATED)},
    "RollingUpdateDeployment": {1: F("maxUnavailable", INT_OR_STRING), 2: F("maxSurge", INT_OR_STRING)},
    "SELinuxOptions": {1: F("user", STR), 2: F("role", STR), 3: F("type", STR), 4: F("level", STR)},
    "Scale": {1: F("metadata", "ObjectMeta"), 2: F("spec", "ScaleSpec"), 3: F("status", "ScaleStatus")},
    "ScaleIOVolumeSource": {
        1: F("gateway", STR), 2: F("system", STR), 3: F("secretRef", "LocalObjectReference"),
        4: F("sslEnabled", BOOL), 5: F("protectionDomain", STR), 6: F("storagePool", STR),
        7: F("storageMode", STR), 8: F("volumeName", STR), 9: F("fsType", STR), 10: F("readOnly", BOOL),
    },
    "ScaleSpec": {1: F("replicas", INT)},
    "ScaleStatus": {1: F("replicas", INT, keep_zero=True), 2: F("selector", STR)},
    "SeccompProfile": {1: F("type", STR), 2: F("localhostProfile", STR)},
    "SecretEnvSource": {
        1: F("localObjectReference", "LocalObjectReference", inline=True),
        2: F("optional", BOOL, keep_zero=True),
    },
    "SecretKeySelector": {
        1: F("localObjectReference", "LocalObjectReference", inline=True), 2: F("key", STR),
        3: F("optional", BOOL, keep_zero=True),
    },
    "SecretProjection": {
        1: F("localObjectReference", "LocalObjectReference", inline=True),
        2: F("items", "KeyToPath", REPEATED), 4: F("optional", BOOL, keep_zero=True),
    },
    "SecretVolumeSource": {
        1: F("secretName", STR), 2: F("items", "KeyToPath", REPEATED),
        3: F("defaultMode", INT, keep_zero=True), 4: F("optional", BOOL, keep_zero=True),
    },
    "SecurityContext": {
        1: F("capabilities", "Capabilities"), 2: F("privileged", BOOL, keep_zero=True),
        3: F("seLinuxOptions", "SELinuxOptions"), 4: F("runAsUser", INT, keep_zero=True),
        5: F("runAsNonRoot", BOOL, keep_zero=True), 6: F("readOnlyRootFilesystem", BOOL, keep_zero=True),
        7: F("allowPrivilegeEscalation", BOOL, keep_zero=True), 8: F("runAsGroup", INT, keep_zero=True),
        9: F("procMount", STR), 10: F("windowsOptions", "WindowsSecurityContextOptions"),
        11: F("seccompProfile", "SeccompProfile"), 12: F("appArmorProfile", "AppArmorProfile"),
    },
    "ServiceAccountTokenProjection": {
        1: F("audience", STR), 2: F("expirationSeconds", INT, keep_zero=True), 3: F("path", STR),
    },
    "SleepAction": {1: F("seconds", INT, keep_zero=True)},
    "StorageOSVolumeSource": {
        1: F("volumeName", STR), 2: F("volumeNamespace", STR), 3: F("fsType", STR), 4: F("readOnly", BOOL),
        5: F("secretRef", "LocalObjectReference"),
    },
    "Sysctl": {1: F("name", STR), 2: F("value", STR)},
    "TCPSocketAction": {1: F("port", INT_OR_STRING), 2: F("host", STR)},
    "Taint": {1: F("key", STR), 2: F("value", STR), 3: F("effect", STR), 4: F("timeAdded", TIME)},
    "Toleration": {
        1: F("key", STR), 2: F("operator", STR), 3: F("value", STR), 4: F("effect", STR),
        5: F("tolerationSeconds", INT, keep_zero=True),
    },
    "TopologySpreadConstraint": {
        1: F("maxSkew", INT, keep_zero=True), 2: F("topologyKey", STR), 3: F("whenUnsatisfiable", STR),
        4: F("labelSelector", "LabelSelector"), 5: F("minDomains", INT, keep_zero=True),
        6: F("nodeAffinityPolicy", STR), 7: F("nodeTaintsPolicy", STR),
        8: F("matchLabelKeys", STR, REPEATED),
    },
    "TypedLocalObjectReference": {1: F("apiGroup", STR), 2: F("kind", STR), 3: F("name", STR)},
    "TypedObjectReference": {
        1: F("apiGroup", STR), 2: F("kind", STR), 3: F("name", STR), 4: F("namespace", STR),
    },
    "Volume": {1: F("name", STR), 2: F("volumeSource", "VolumeSource", inline=True)},
    "VolumeDevice": {1: F("name", STR), 2: F("devicePath", STR)},
    "VolumeMount": {
        1: F("name", STR), 2: F("readOnly", BOOL), 3: F("mountPath", STR), 4: F("subPath", STR),
        5: F("mountPropagation", STR), 6: F("subPathExpr", STR), 7: F("recursiveReadOnly", STR),
    },
    "VolumeMountStatus": {
        1: F("name", STR), 2: F("mountPath", STR), 3: F("readOnly", BOOL), 4: F("recursiveReadOnly", STR),
    },
    "VolumeProjection": {
        1: F("secret", "SecretProjection"), 2: F("downwardAPI", "DownwardAPIProjection"),
        3: F("configMap", "ConfigMapProjection"),
        4: F("serviceAccountToken", "ServiceAccountTokenProjection"),
        5: F("clusterTrustBundle", "ClusterTrustBundleProjection"),
    },
    "VolumeResourceRequirements": {1: F("limits", MAP_QUANTITY), 2: F("requests", MAP_QUANTITY)},
    "VolumeSource": {
        1: F("hostPath", "HostPathVolumeSource"), 2: F("emptyDir", "EmptyDirVolumeSource"),
        3: F("gcePersistentDisk", "GCEPersistentDiskVolumeSource"),
        4: F("awsElasticBlockStore", "AWSElasticBlockStoreVolumeSource"),
        5: F("gitRepo", "GitRepoVolumeSource"), 6: F("secret", "SecretVolumeSource"),
        7: F("nfs", "NFSVolumeSource"), 8: F("iscsi", "ISCSIVolumeSource"),
        9: F("glusterfs", "GlusterfsVolumeSource"),
        10: F("persistentVolumeClaim", "PersistentVolumeClaimVolumeSource"), 11: F("rbd", "RBDVolumeSource"),
        12: F("flexVolume", "FlexVolumeSource"), 13: F("cinder", "CinderVolumeSource"),
        14: F("cephfs", "CephFSVolumeSource"), 15: F("flocker", "FlockerVolumeSource"),
        16: F("downwardAPI", "DownwardAPIVolumeSource"), 17: F("fc", "FCVolumeSource"),
        18: F("azureFile", "AzureFileVolumeSource"), 19: F("configMap", "ConfigMapVolumeSource"),
        20: F("vsphereVolume", "VsphereVirtualDiskVolumeSource"), 21: F("quobyte", "QuobyteVolumeSource"),
        22: F("azureDisk", "AzureDiskVolumeSource"),
        23: F("photonPersistentDisk", "PhotonPersistentDiskVolumeSource"),
        24: F("portworxVolume", "PortworxVolumeSource"), 25: F("scaleIO", "ScaleIOVolumeSource"),
        26: F("projected", "ProjectedVolumeSource"), 27: F("storageos", "StorageOSVolumeSource"),
        28: F("csi", "CSIVolumeSource"), 29: F("ephemeral", "EphemeralVolumeSource"),
        30: F("image", "ImageVolumeSource"),
    },
    "VsphereVirtualDiskVolumeSource": {
        1: F("volumePath", STR), 2: F("fsType", STR), 3: F("storagePolicyName", STR),
        4: F("storagePolicyID", STR),
    },
    "WeightedPodAffinityTerm": {
        1: F("weight", INT, keep_zero=True), 2: F("podAffinityTerm", "PodAffinityTerm"),
    },
    "WindowsSecurityContextOptions": {
        1: F("gmsaCredentialSpecName", STR), 2: F("gmsaCredentialSpec", STR), 3: F("runAsUserName", STR),
        4: F("hostProcess", BOOL),
    },
}

# core/v1 Service and discovery.k8s.io/v1 EndpointSlice (kubectl create service / expose send them).
KINDS.update({("v1", "Service"): "Service", ("discovery.k8s.io/v1", "EndpointSlice"): "EndpointSlice"})
MESSAGES.update({
    "Service": {1: F("metadata", "ObjectMeta"), 2: F("spec", "ServiceSpec"), 3: F("status", "ServiceStatus")},
    "ServiceSpec": {
        1: F("ports", "ServicePort", REPEATED), 2: F("selector", MAP_STR), 3: F("clusterIP", STR),
        4: F("type", STR), 5: F("externalIPs", STR, REPEATED), 7: F("sessionAffinity", STR),
        8: F("loadBalancerIP", STR), 9: F("loadBalancerSourceRanges", STR, REPEATED), 10: F("externalName", STR),
        11: F("externalTrafficPolicy", STR), 12: F("healthCheckNodePort", INT),
        13: F("publishNotReadyAddresses", BOOL), 14: F("sessionAffinityConfig", "SessionAffinityConfig"),
        17: F("ipFamilyPolicy", STR, keep_zero=True), 18: F("clusterIPs", STR, REPEATED),
        19: F("ipFamilies", STR, REPEATED), 20: F("allocateLoadBalancerNodePorts", BOOL, keep_zero=True),
        21: F("loadBalancerClass", STR, keep_zero=True), 22: F("internalTrafficPolicy", STR, keep_zero=True),
        23: F("trafficDistribution", STR, keep_zero=True),
    },
    "ServicePort": {
        1: F("name", STR), 2: F("protocol", STR), 3: F("port", INT, keep_zero=True),
        4: F("targetPort", INT_OR_STRING), 5: F("nodePort", INT), 6: F("appProtocol", STR, keep_zero=True),
    },
    "SessionAffinityConfig": {1: F("clientIP", "ClientIPConfig")},
    "ClientIPConfig": {1: F("timeoutSeconds", INT, keep_zero=True)},
    "ServiceStatus": {1: F("loadBalancer", "LoadBalancerStatus", keep_zero=True),
                      2: F("conditions", "MetaCondition", REPEATED)},
    "LoadBalancerStatus": {1: F("ingress", "LoadBalancerIngress", REPEATED)},
    "LoadBalancerIngress": {1: F("ip", STR), 2: F("hostname", STR), 3: F("ipMode", STR, keep_zero=True),
                            4: F("ports", "PortStatus", REPEATED)},
    "PortStatus": {1: F("port", INT, keep_zero=True), 2: F("protocol", STR), 3: F("error", STR, keep_zero=True)},
    "MetaCondition": {1: F("type", STR), 2: F("status", STR), 3: F("observedGeneration", INT),
                      4: F("lastTransitionTime", TIME), 5: F("reason", STR), 6: F("message", STR)},
    "EndpointSlice": {1: F("metadata", "ObjectMeta"), 2: F("endpoints", "Endpoint", REPEATED),
                      3: F("ports", "EndpointPort", REPEATED), 4: F("addressType", STR)},
    "Endpoint": {
        1: F("addresses", STR, REPEATED), 2: F("conditions", "EndpointConditions"),
        3: F("hostname", STR, keep_zero=True), 4: F("targetRef", "ObjectReference"),
        5: F("deprecatedTopology", MAP_STR), 6: F("nodeName", STR, keep_zero=True),
        7: F("zone", STR, keep_zero=True), 8: F("hints", "EndpointHints"),
    },
    "EndpointConditions": {1: F("ready", BOOL, keep_zero=True), 2: F("serving", BOOL, keep_zero=True),
                           3: F("terminating", BOOL, keep_zero=True)},
    "EndpointHints": {1: F("forZones", "ForZone", REPEATED), 2: F("forNodes", "ForNode", REPEATED)},
    "ForZone": {1: F("name", STR)},
    "ForNode": {1: F("name", STR)},
    "EndpointPort": {1: F("name", STR, keep_zero=True), 2: F("protocol", STR, keep_zero=True),
                     3: F("port", INT, keep_zero=True), 4: F("appProtocol", STR, keep_zero=True)},
})

# ReplicaSet and DaemonSet (apps/v1), as served by sigma.api.apps_kinds.
KINDS.update({("apps/v1", "ReplicaSet"): "ReplicaSet", ("apps/v1", "DaemonSet"): "DaemonSet"})
MESSAGES.update({
    "ReplicaSet": {1: F("metadata", "ObjectMeta"), 2: F("spec", "ReplicaSetSpec"), 3: F("status", "ReplicaSetStatus")},
    "ReplicaSetSpec": {1: F("replicas", INT, keep_zero=True), 2: F("selector", "LabelSelector"),
                       3: F("template", "PodTemplateSpec"), 4: F("minReadySeconds", INT)},
    "ReplicaSetStatus": {1: F("replicas", INT, keep_zero=True), 2: F("fullyLabeledReplicas", INT),
                         3: F("observedGeneration", INT), 4: F("readyReplicas", INT), 5: F("availableReplicas", INT),
                         6: F("conditions", "ReplicaSetCondition", REPEATED), 7: F("terminatingReplicas", INT)},
    "ReplicaSetCondition": {1: F("type", STR), 2: F("status", STR), 3: F("lastTransitionTime", TIME),
                            4: F("reason", STR), 5: F("message", STR)},
    "DaemonSet": {1: F("metadata", "ObjectMeta"), 2: F("spec", "DaemonSetSpec"), 3: F("status", "DaemonSetStatus")},
    "DaemonSetSpec": {1: F("selector", "LabelSelector"), 2: F("template", "PodTemplateSpec"),
                      3: F("updateStrategy", "DaemonSetUpdateStrategy"), 4: F("minReadySeconds", INT),
                      6: F("revisionHistoryLimit", INT, keep_zero=True)},
    "DaemonSetUpdateStrategy": {1: F("type", STR), 2: F("rollingUpdate", "RollingUpdateDaemonSet")},
    "RollingUpdateDaemonSet": {1: F("maxUnavailable", INT_OR_STRING), 2: F("maxSurge", INT_OR_STRING)},
    "DaemonSetStatus": {
        1: F("currentNumberScheduled", INT, keep_zero=True), 2: F("numberMisscheduled", INT, keep_zero=True),
        3: F("desiredNumberScheduled", INT, keep_zero=True), 4: F("numberReady", INT, keep_zero=True),
        5: F("observedGeneration", INT), 6: F("updatedNumberScheduled", INT), 7: F("numberAvailable", INT),
        8: F("numberUnavailable", INT), 9: F("collisionCount", INT),
        10: F("conditions", "DaemonSetCondition", REPEATED),
    },
    "DaemonSetCondition": {1: F("type", STR), 2: F("status", STR), 3: F("lastTransitionTime", TIME),
                           4: F("reason", STR), 5: F("message", STR)},
})

# batch/v1 Job and CronJob, policy/v1 PodDisruptionBudget (kubectl create job/cronjob/pdb,
# kubectl create job --from=cronjob/NAME send them).
KINDS.update({("batch/v1", "Job"): "Job", ("batch/v1", "CronJob"): "CronJob",
              ("policy/v1", "PodDisruptionBudget"): "PodDisruptionBudget"})
MESSAGES.update({
    "Job": {1: F("metadata", "ObjectMeta"), 2: F("spec", "JobSpec"), 3: F("status", "JobStatus")},
    "JobSpec": {
        1: F("parallelism", INT, keep_zero=True), 2: F("completions", INT, keep_zero=True),
        3: F("activeDeadlineSeconds", INT, keep_zero=True), 4: F("selector", "LabelSelector"),
        5: F("manualSelector", BOOL, keep_zero=True), 6: F("template", "PodTemplateSpec"),
        7: F("backoffLimit", INT, keep_zero=True), 8: F("ttlSecondsAfterFinished", INT, keep_zero=True),
        9: F("completionMode", STR), 10: F("suspend", BOOL, keep_zero=True),
        11: F("podFailurePolicy", "PodFailurePolicy"), 12: F("backoffLimitPerIndex", INT, keep_zero=True),
        13: F("maxFailedIndexes", INT, keep_zero=True), 14: F("podReplacementPolicy", STR),
        15: F("successPolicy", "SuccessPolicy"), 16: F("managedBy", STR),
    },
    "PodFailurePolicy": {1: F("rules", "PodFailurePolicyRule", REPEATED)},
    "PodFailurePolicyRule": {1: F("action", STR), 2: F("onExitCodes", "PodFailurePolicyOnExitCodesRequirement"),
                             3: F("onPodConditions", "PodFailurePolicyOnPodConditionsPattern", REPEATED)},
    "PodFailurePolicyOnExitCodesRequirement": {1: F("containerName", STR), 2: F("operator", STR),
                                               3: F("values", INT, REPEATED)},
    "PodFailurePolicyOnPodConditionsPattern": {1: F("type", STR), 2: F("status", STR)},
    "SuccessPolicy": {1: F("rules", "SuccessPolicyRule", REPEATED)},
    "SuccessPolicyRule": {1: F("succeededIndexes", STR), 2: F("succeededCount", INT, keep_zero=True)},
    "JobStatus": {
        1: F("conditions", "JobCondition", REPEATED), 2: F("startTime", TIME), 3: F("completionTime", TIME),
        4: F("active", INT), 5: F("succeeded", INT), 6: F("failed", INT), 7: F("completedIndexes", STR),
        8: F("uncountedTerminatedPods", "UncountedTerminatedPods"), 9: F("ready", INT, keep_zero=True),
        10: F("failedIndexes", STR), 11: F("terminating", INT, keep_zero=True),
    },
    "JobCondition": {1: F("type", STR), 2: F("status", STR), 3: F("lastProbeTime", TIME),
                     4: F("lastTransitionTime", TIME), 5: F("reason", STR), 6: F("message", STR)},
    "UncountedTerminatedPods": {1: F("succeeded", STR, REPEATED), 2: F("failed", STR, REPEATED)},
    "CronJob": {1: F("metadata", "ObjectMeta"), 2: F("spec", "CronJobSpec"), 3: F("status", "CronJobStatus")},
    "CronJobSpec": {
        1: F("schedule", STR), 2: F("startingDeadlineSeconds", INT, keep_zero=True), 3: F("concurrencyPolicy", STR),
        4: F("suspend", BOOL, keep_zero=True), 5: F("jobTemplate", "JobTemplateSpec"),
        6: F("successfulJobsHistoryLimit", INT, keep_zero=True), 7: F("failedJobsHistoryLimit", INT, keep_zero=True),
        8: F("timeZone", STR),
    },
    "JobTemplateSpec": {1: F("metadata", "ObjectMeta"), 2: F("spec", "JobSpec")},
    "CronJobStatus": {1: F("active", "ObjectReference", REPEATED), 4: F("lastScheduleTime", TIME),
                      5: F("lastSuccessfulTime", TIME)},
    "PodDisruptionBudget": {1: F("metadata", "ObjectMeta"), 2: F("spec", "PodDisruptionBudgetSpec"),
                            3: F("status", "PodDisruptionBudgetStatus")},
    "PodDisruptionBudgetSpec": {1: F("minAvailable", INT_OR_STRING, keep_zero=True),
                                2: F("selector", "LabelSelector"),
                                3: F("maxUnavailable", INT_OR_STRING, keep_zero=True),
                                4: F("unhealthyPodEvictionPolicy", STR)},
    "PodDisruptionBudgetStatus": {
        1: F("observedGeneration", INT), 2: F("disruptedPods", MAP_STR),
        3: F("disruptionsAllowed", INT, keep_zero=True),
        4: F("currentHealthy", INT, keep_zero=True), 5: F("desiredHealthy", INT, keep_zero=True),
        6: F("expectedPods", INT, keep_zero=True), 7: F("conditions", "MetaCondition", REPEATED),
    },
})

# core/v1 ConfigMap, Secret, ServiceAccount and authentication.k8s.io/v1 TokenRequest
# (kubectl create configmap / secret / serviceaccount / token send them).
KINDS.update({("v1", "ConfigMap"): "ConfigMap", ("v1", "Secret"): "Secret",
              ("v1", "ServiceAccount"): "ServiceAccount",
              ("authentication.k8s.io/v1", "TokenRequest"): "TokenRequest"})
MESSAGES.update({
    "ConfigMap": {1: F("metadata", "ObjectMeta"), 2: F("data", MAP_STR), 3: F("binaryData", MAP_BYTES),
                  4: F("immutable", BOOL, keep_zero=True)},
    "Secret": {1: F("metadata", "ObjectMeta"), 2: F("data", MAP_BYTES), 3: F("type", STR),
               4: F("stringData", MAP_STR), 5: F("immutable", BOOL, keep_zero=True)},
    "ServiceAccount": {1: F("metadata", "ObjectMeta"), 2: F("secrets", "ObjectReference", REPEATED),
                       3: F("imagePullSecrets", "LocalObjectReference", REPEATED),
                       4: F("automountServiceAccountToken", BOOL, keep_zero=True)},
    "TokenRequest": {1: F("metadata", "ObjectMeta"), 2: F("spec", "TokenRequestSpec"),
                     3: F("status", "TokenRequestStatus")},
    "TokenRequestSpec": {1: F("audiences", STR, REPEATED), 3: F("boundObjectRef", "BoundObjectReference"),
                         4: F("expirationSeconds", INT, keep_zero=True)},
    "BoundObjectReference": {1: F("kind", STR), 2: F("apiVersion", STR), 3: F("name", STR), 4: F("uid", STR)},
    "TokenRequestStatus": {1: F("token", STR), 2: F("expirationTimestamp", TIME)},
})

# autoscaling/v2 HorizontalPodAutoscaler (kubectl autoscale sends it).
KINDS.update({("autoscaling/v2", "HorizontalPodAutoscaler"): "HorizontalPodAutoscaler"})
MESSAGES.update({
    "HorizontalPodAutoscaler": {1: F("metadata", "ObjectMeta"), 2: F("spec", "HorizontalPodAutoscalerSpec"),
                                3: F("status", "HorizontalPodAutoscalerStatus")},
    "HorizontalPodAutoscalerSpec": {1: F("scaleTargetRef", "CrossVersionObjectReference"),
                                    2: F("minReplicas", INT, keep_zero=True), 3: F("maxReplicas", INT, keep_zero=True),
                                    4: F("metrics", "MetricSpec", REPEATED),
                                    5: F("behavior", "HorizontalPodAutoscalerBehavior")},
    "CrossVersionObjectReference": {1: F("kind", STR), 2: F("name", STR), 3: F("apiVersion", STR)},
    "MetricSpec": {1: F("type", STR), 4: F("resource", "ResourceMetricSource")},
    "ResourceMetricSource": {1: F("name", STR), 2: F("target", "MetricTarget")},
    "MetricTarget": {1: F("type", STR), 2: F("value", QUANTITY), 3: F("averageValue", QUANTITY),
                     4: F("averageUtilization", INT, keep_zero=True)},
    "HorizontalPodAutoscalerBehavior": {1: F("scaleUp", "HPAScalingRules"), 2: F("scaleDown", "HPAScalingRules")},
    "HPAScalingRules": {1: F("selectPolicy", STR), 2: F("policies", "HPAScalingPolicy", REPEATED),
                        3: F("stabilizationWindowSeconds", INT, keep_zero=True), 4: F("tolerance", QUANTITY)},
    "HPAScalingPolicy": {1: F("type", STR), 2: F("value", INT, keep_zero=True),
                         3: F("periodSeconds", INT, keep_zero=True)},
    "HorizontalPodAutoscalerStatus": {
        1: F("observedGeneration", INT), 2: F("lastScaleTime", TIME), 3: F("currentReplicas", INT, keep_zero=True),
        4: F("desiredReplicas", INT, keep_zero=True), 5: F("currentMetrics", "MetricStatus", REPEATED),
        6: F("conditions", "HorizontalPodAutoscalerCondition", REPEATED)},
    "MetricStatus": {1: F("type", STR), 4: F("resource", "ResourceMetricStatus")},
    "ResourceMetricStatus": {1: F("name", STR), 2: F("current", "MetricValueStatus")},
    "MetricValueStatus": {1: F("value", QUANTITY), 2: F("averageValue", QUANTITY),
                          3: F("averageUtilization", INT, keep_zero=True)},
    "HorizontalPodAutoscalerCondition": {1: F("type", STR), 2: F("status", STR), 3: F("lastTransitionTime", TIME),
                                         4: F("reason", STR), 5: F("message", STR)},
})
# autoscaling/v1 HorizontalPodAutoscaler (kubectl autoscale falls back to it when v2 is refused).
KINDS.update({("autoscaling/v1", "HorizontalPodAutoscaler"): "HorizontalPodAutoscalerV1"})
MESSAGES.update({
    "HorizontalPodAutoscalerV1": {1: F("metadata", "ObjectMeta"), 2: F("spec", "HorizontalPodAutoscalerSpecV1"),
                                  3: F("status", "HorizontalPodAutoscalerStatusV1")},
    "HorizontalPodAutoscalerSpecV1": {1: F("scaleTargetRef", "CrossVersionObjectReference"),
                                      2: F("minReplicas", INT, keep_zero=True),
                                      3: F("maxReplicas", INT, keep_zero=True),
                                      4: F("targetCPUUtilizationPercentage", INT, keep_zero=True)},
    "HorizontalPodAutoscalerStatusV1": {1: F("observedGeneration", INT), 2: F("lastScaleTime", TIME),
                                        3: F("currentReplicas", INT, keep_zero=True),
                                        4: F("desiredReplicas", INT, keep_zero=True),
                                        5: F("currentCPUUtilizationPercentage", INT, keep_zero=True)},
})
# rbac.authorization.k8s.io/v1 (kubectl create role/rolebinding/clusterrole/clusterrolebinding),
# authorization.k8s.io/v1 reviews (kubectl auth can-i) and authentication.k8s.io/v1
# SelfSubjectReview (kubectl auth whoami).
KINDS.update({("rbac.authorization.k8s.io/v1", "Role"): "Role",
              ("rbac.authorization.k8s.io/v1", "ClusterRole"): "ClusterRole",
              ("rbac.authorization.k8s.io/v1", "RoleBinding"): "RoleBinding",
              ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "RoleBinding",  # same fields
              ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
              ("authorization.k8s.io/v1", "SubjectAccessReview"): "SubjectAccessReview",
              ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): "SelfSubjectRulesReview",
              ("authentication.k8s.io/v1", "SelfSubjectReview"): "SelfSubjectReview"})
MESSAGES.update({
    "Role": {1: F("metadata", "ObjectMeta"), 2: F("rules", "PolicyRule", REPEATED)},
    "ClusterRole": {1: F("metadata", "ObjectMeta"), 2: F("rules", "PolicyRule", REPEATED),
                    3: F("aggregationRule", "AggregationRule")},
    "AggregationRule": {1: F("clusterRoleSelectors", "LabelSelector", REPEATED)},
    "PolicyRule": {1: F("verbs", STR, REPEATED), 2: F("apiGroups", STR, REPEATED), 3: F("resources", STR, REPEATED),
                   4: F("resourceNames", STR, REPEATED), 5: F("nonResourceURLs", STR, REPEATED)},
    "RoleBinding": {1: F("metadata", "ObjectMeta"), 2: F("subjects", "RbacSubject", REPEATED),
                    3: F("roleRef", "RoleRef")},
    "RbacSubject": {1: F("kind", STR), 2: F("apiGroup", STR, keep_zero=True), 3: F("name", STR),
                    4: F("namespace", STR)},
    "RoleRef": {1: F("apiGroup", STR), 2: F("kind", STR), 3: F("name", STR)},
    "SelfSubjectAccessReview": {1: F("metadata", "ObjectMeta"), 2: F("spec", "SelfSubjectAccessReviewSpec")},
    "SelfSubjectAccessReviewSpec": {1: F("resourceAttributes", "ResourceAttributes"),
                                    2: F("nonResourceAttributes", "NonResourceAttributes")},
    "ResourceAttributes": {1: F("namespace", STR), 2: F("verb", STR), 3: F("group", STR), 4: F("version", STR),
                           5: F("resource", STR), 6: F("subresource", STR), 7: F("name", STR)},
    "NonResourceAttributes": {1: F("path", STR), 2: F("verb", STR)},
    "SubjectAccessReview": {1: F("metadata", "ObjectMeta"), 2: F("spec", "SubjectAccessReviewSpec")},
    "SubjectAccessReviewSpec": {1: F("resourceAttributes", "ResourceAttributes"),
                                2: F("nonResourceAttributes", "NonResourceAttributes"), 3: F("user", STR),
                                4: F("groups", STR, REPEATED), 6: F("uid", STR)},
    "SelfSubjectRulesReview": {1: F("metadata", "ObjectMeta"), 2: F("spec", "SelfSubjectRulesReviewSpec")},
    "SelfSubjectRulesReviewSpec": {1: F("namespace", STR)},
    "SelfSubjectReview": {1: F("metadata", "ObjectMeta")},
})

# ControllerRevision (apps/v1), as served by sigma.api.controllerrevision_kinds: data is a
# runtime.RawExtension, {raw = 1} holding the JSON document itself.
KINDS.update({("apps/v1", "ControllerRevision"): "ControllerRevision"})
MESSAGES.update({
    "ControllerRevision": {1: F("metadata", "ObjectMeta"), 2: F("data", RAW_JSON),
                           3: F("revision", INT, keep_zero=True)},
})
