"""Kubernetes protobuf request bodies decode to the JSON objects kubectl would have sent.

The fixtures under fixtures/*.pb are bodies kubectl 1.32 sent to a Sigma master (captured by
a logging proxy in front of it); their expected dicts are kubectl's own JSON for the same
command (``--dry-run=client -o json``), with the ``creationTimestamp: null`` Sigma drops.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sigma.api import admission
from sigma.api.protobuf import ProtobufError, decode_k8s_protobuf, encode_k8s_protobuf
from sigma.api.protobuf_schema import KINDS, MAP, MESSAGE, MESSAGES
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.store.sqlite import SqliteStore

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    return decode_k8s_protobuf((FIXTURES / name).read_bytes())


# Hand-built wire bytes, for inputs the encoder would never produce.
def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes([*out, value])


def vfield(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def lfield(number: int, payload: bytes) -> bytes:
    return varint((number << 3) | 2) + varint(len(payload)) + payload


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = lfield(1, api_version.encode()) + lfield(2, kind.encode())
    return b"k8s\x00" + lfield(1, type_meta) + lfield(2, raw)


def roundtrip(obj: dict[str, Any]) -> dict[str, Any]:
    return decode_k8s_protobuf(encode_k8s_protobuf(obj))


# --- real kubectl bodies -----------------------------------------------------------------


def test_kubectl_create_deployment_decodes_to_the_json_kubectl_would_send() -> None:
    # kubectl create deployment web --image=nginx --replicas=2
    labels = {"app": "web"}
    assert fixture("deployment_web.pb") == {
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "web", "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}},
            "strategy": {},
        },
        "status": {},
    }


def test_kubectl_create_deployment_with_a_command_and_a_port_keeps_both() -> None:
    # kubectl create deployment api --image=nginx:1.25 --port=8080 --replicas=3 -n default -- sleep 3600
    obj = fixture("deployment_api_command_port.pb")
    assert obj["metadata"] == {"name": "api", "namespace": "default", "labels": {"app": "api"}}
    assert obj["spec"]["replicas"] == 3
    assert obj["spec"]["selector"] == {"matchLabels": {"app": "api"}}
    assert obj["spec"]["template"]["spec"]["containers"] == [{
        "name": "nginx", "image": "nginx:1.25", "command": ["sleep", "3600"],
        "ports": [{"containerPort": 8080}], "resources": {},
    }]


def test_kubectl_create_namespace_decodes_with_empty_spec_and_status() -> None:
    assert fixture("namespace_team_a.pb") == {
        "kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "team-a"}, "spec": {}, "status": {},
    }


def test_kubectl_create_priorityclass_decodes_value_description_and_policy() -> None:
    # kubectl create priorityclass high --value=1000 --description="for important pods"
    assert fixture("priorityclass_high.pb") == {
        "kind": "PriorityClass", "apiVersion": "scheduling.k8s.io/v1", "metadata": {"name": "high"},
        "value": 1000, "description": "for important pods", "preemptionPolicy": "PreemptLowerPriority",
    }


def test_a_priorityclass_value_of_zero_is_kept_because_json_always_sends_it() -> None:
    assert fixture("priorityclass_low_zero_value.pb")["value"] == 0


def test_a_global_default_priorityclass_keeps_its_flag_and_preemption_policy() -> None:
    # kubectl create priorityclass crit --value=100000 --global-default --preemption-policy=Never
    obj = fixture("priorityclass_crit_global_default.pb")
    assert (obj["value"], obj["globalDefault"], obj["preemptionPolicy"]) == (100000, True, "Never")


def test_the_delete_options_of_kubectl_drain_decode_with_their_grace_period() -> None:
    # kubectl drain n1 --force --grace-period=7, which deletes pods with a protobuf body
    assert fixture("deleteoptions_drain.pb") == {"kind": "DeleteOptions", "apiVersion": "v1",
                                                  "gracePeriodSeconds": 7}


@pytest.fixture
def registry() -> Iterator[Registry]:
    store = SqliteStore(":memory:")
    reg = Registry(store, clock=lambda: 1_800_000_000.0)
    admission.install(reg)
    admission.bootstrap(reg)
    try:
        yield reg
    finally:
        store.close()


@pytest.mark.parametrize(("name", "plural", "namespace"), [
    ("deployment_web.pb", "deployments", "default"),
    ("deployment_api_command_port.pb", "deployments", "default"),
    ("namespace_team_a.pb", "namespaces", None),
    ("priorityclass_high.pb", "priorityclasses", None),
    ("priorityclass_crit_global_default.pb", "priorityclasses", None),
])
def test_decoded_kubectl_bodies_pass_sigma_strict_validation(
        registry: Registry, name: str, plural: str, namespace: str | None) -> None:
    obj = fixture(name)
    created = registry.create(resource(plural), namespace, obj, strict=True)
    assert created["metadata"]["name"] == obj["metadata"]["name"]


# --- round trips through the same tables --------------------------------------------------


def test_a_pod_with_scheduling_resources_probes_and_security_roundtrips() -> None:
    pod = {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "x"}, "annotations": {"a": "b"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                          "uid": "u1", "controller": True, "blockOwnerDeletion": False}],
                     "finalizers": ["f"], "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "containers": [{
                "name": "app", "image": "nginx:1.25", "command": ["sh", "-c"], "args": ["sleep 1"],
                "workingDir": "/srv", "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "A", "value": "1"},
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "1"}},
                "imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
                "livenessProbe": {"tcpSocket": {"port": 80}, "terminationGracePeriodSeconds": 0},
                "securityContext": {"runAsUser": 0, "runAsNonRoot": False, "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
            }],
            "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
                        {"name": "cfg", "configMap": {"name": "c", "defaultMode": 420}}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 0, "dnsPolicy": "ClusterFirst",
            "nodeSelector": {"disk": "ssd"}, "automountServiceAccountToken": False, "nodeName": "n1",
            "schedulerName": "sigma-scheduler", "priorityClassName": "high", "priority": 1000,
            "securityContext": {"supplementalGroups": [1, 2]},
            "tolerations": [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute",
                             "tolerationSeconds": 30}, {"operator": "Exists"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]},
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 10, "preference": {"matchExpressions": [
                            {"key": "disk", "operator": "Exists"}]}}],
                },
                "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "x"}},
                     "topologyKey": "kubernetes.io/hostname"}]},
            },
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                                           "whenUnsatisfiable": "DoNotSchedule",
                                           "labelSelector": {"matchLabels": {"app": "x"}}}],
        },
        "status": {"phase": "Running", "podIP": "10.0.0.5", "startTime": "2026-01-01T00:00:05Z",
                   "conditions": [{"type": "Ready", "status": "True",
                                   "lastTransitionTime": "2026-01-01T00:00:06Z"}]},
    }
    assert roundtrip(pod) == pod


def test_a_deployment_strategy_keeps_int_and_percent_surge() -> None:
    deployment = {
        "kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "d"},
        "spec": {"replicas": 0, "revisionHistoryLimit": 3, "progressDeadlineSeconds": 600,
                 "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["d"]}]},
                 "strategy": {"type": "RollingUpdate",
                              "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                 "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
    }
    assert roundtrip(deployment) == deployment


def test_a_node_roundtrips_taints_capacity_conditions_and_addresses() -> None:
    node = {
        "kind": "Node", "apiVersion": "v1", "metadata": {"name": "n1"},
        "spec": {"unschedulable": True, "podCIDR": "10.1.0.0/24",
                 "taints": [{"key": "gpu", "value": "true", "effect": "NoSchedule",
                             "timeAdded": "2026-01-01T00:00:00Z"}]},
        "status": {
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "7500m", "memory": "30Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "lastHeartbeatTime": "2026-01-01T00:01:00Z",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"},
                          {"type": "Hostname", "address": "n1"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0", "architecture": "amd64"},
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        },
    }
    assert roundtrip(node) == node


def test_an_event_keeps_its_seconds_timestamps_and_microsecond_event_time() -> None:
    event = {
        "kind": "Event", "apiVersion": "v1", "metadata": {"name": "e", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p", "uid": "u"},
        "reason": "Scheduled", "message": "assigned", "source": {"component": "sigma-scheduler"},
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:09Z", "count": 2,
        "type": "Normal", "eventTime": "2026-01-01T00:00:00.123456Z", "reportingComponent": "s",
    }
    assert roundtrip(event) == event


@pytest.mark.parametrize("obj", [
    {"kind": "Lease", "apiVersion": "coordination.k8s.io/v1", "metadata": {"name": "l", "namespace": "n"},
     "spec": {"holderIdentity": "m1", "leaseDurationSeconds": 15, "leaseTransitions": 0,
              "acquireTime": "2026-01-01T00:00:00.000000Z", "renewTime": "2026-01-01T00:00:10.500000Z"}},
    {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "d", "namespace": "n"},
     "spec": {"replicas": 4}, "status": {"replicas": 0, "selector": "app=d"}},
    {"kind": "Eviction", "apiVersion": "policy/v1", "metadata": {"name": "p", "namespace": "n"},
     "deleteOptions": {"gracePeriodSeconds": 0}},
    {"kind": "Binding", "apiVersion": "v1", "metadata": {"name": "p", "namespace": "n", "uid": "u"},
     "target": {"kind": "Node", "name": "n1"}},
    {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1", "gracePeriodSeconds": 30,
     "preconditions": {"uid": "u", "resourceVersion": "7"}, "orphanDependents": False,
     "propagationPolicy": "Foreground", "dryRun": ["All"]},
    {"kind": "Namespace", "apiVersion": "v1",
     "metadata": {"name": "m", "managedFields": [{"manager": "kubectl", "operation": "Update",
                                                 "fieldsType": "FieldsV1",
                                                 "fieldsV1": {"f:metadata": {"f:labels": {}}}}]}},
    {"kind": "ControllerRevision", "apiVersion": "apps/v1", "metadata": {"name": "ds-abc", "namespace": "n"},
     "data": {"spec": {"template": {"$patch": "replace", "spec": {"containers": [{"name": "m"}]}}}}, "revision": 2},
], ids=lambda obj: obj["kind"])
def test_other_served_kinds_roundtrip(obj: dict[str, Any]) -> None:
    assert roundtrip(obj) == obj


# --- wire-format details --------------------------------------------------------------------


def test_negative_numbers_arrive_as_ten_byte_varints_and_decode_negative() -> None:
    raw = lfield(1, lfield(1, b"low")) + vfield(2, -5)
    assert len(varint(-5)) == 10
    assert decode_k8s_protobuf(envelope("scheduling.k8s.io/v1", "PriorityClass", raw))["value"] == -5


def test_zero_values_go_would_omit_from_json_are_dropped_but_pointers_are_kept() -> None:
    # Go's encoder writes every non-pointer scalar; minReadySeconds 0 and paused false are
    # omitempty in JSON, while replicas is a pointer and 0 means "scale to zero".
    spec = vfield(1, 0) + vfield(5, 0) + vfield(7, 0) + lfield(4, b"")
    raw = lfield(1, lfield(1, b"d") + lfield(8, b"")) + lfield(2, spec)
    assert decode_k8s_protobuf(envelope("apps/v1", "Deployment", raw)) == {
        "kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "d"},
        "spec": {"replicas": 0, "strategy": {}},
    }


def test_an_empty_creation_timestamp_is_left_out_like_json_null() -> None:
    raw = lfield(1, lfield(1, b"x") + lfield(8, b""))
    assert decode_k8s_protobuf(envelope("v1", "Namespace", raw))["metadata"] == {"name": "x"}


def test_times_are_rfc3339_in_seconds_and_microtimes_keep_microseconds() -> None:
    stamp = vfield(1, 1767225600) + vfield(2, 123456789)  # 2026-01-01T00:00:00.123456789Z
    meta = lfield(1, b"e") + lfield(8, stamp)
    raw = lfield(1, meta) + lfield(10, stamp)
    obj = decode_k8s_protobuf(envelope("v1", "Event", raw))
    assert obj["metadata"]["creationTimestamp"] == "2026-01-01T00:00:00Z"
    assert obj["eventTime"] == "2026-01-01T00:00:00.123456Z"


def test_unknown_field_numbers_are_skipped_like_the_kubernetes_api_server_does() -> None:
    raw = lfield(1, lfield(1, b"x") + lfield(99, b"future")) + vfield(77, 1)
    assert decode_k8s_protobuf(envelope("v1", "Namespace", raw)) == {
        "kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "x"},
    }


def test_packed_repeated_integers_are_accepted() -> None:
    security = lfield(4, varint(1) + varint(2) + varint(3))  # supplementalGroups, packed
    raw = lfield(1, lfield(1, b"p")) + lfield(2, lfield(14, security))
    obj = decode_k8s_protobuf(envelope("v1", "Pod", raw))
    assert obj["spec"]["securityContext"]["supplementalGroups"] == [1, 2, 3]


def test_delete_options_are_accepted_under_any_api_version() -> None:
    body = envelope("apps/v1", "DeleteOptions", lfield(4, b"Orphan"))
    assert decode_k8s_protobuf(body)["propagationPolicy"] == "Orphan"


def test_every_table_names_only_tables_that_exist() -> None:
    for message, table in MESSAGES.items():
        for number, field in table.items():
            if field.kind == MESSAGE:
                assert field.message_type in MESSAGES, (message, number)
            if field.kind == MAP:
                assert not field.repeated
    assert set(KINDS.values()) <= set(MESSAGES)


# --- malformed input ----------------------------------------------------------------------


@pytest.mark.parametrize(("body", "reason"), [
    (b'{"kind": "Namespace"}', "missing the k8s"),
    (b"k8s", "missing the k8s"),
    (b"k8s\x00\x0a", "truncated varint"),
    (b"k8s\x00\x0a\x80", "truncated varint"),
    (b"k8s\x00" + b"\x08" + b"\xff" * 11, "longer than 10 bytes"),
    (b"k8s\x00\x12\x05ab", "claims 5 bytes but only 2 remain"),
    (b"k8s\x00\x0b", "unsupported wire type 3"),
    (b"k8s\x00\x00", "field number 0"),
    (envelope("v1", "ReplicationController", b""), "no protobuf decoding for apiVersion 'v1' kind 'Replication"),
    (envelope("", "", b""), "no protobuf decoding"),
    (envelope("apps/v2", "Deployment", b""), "apiVersion 'apps/v2'"),
    (envelope("v1", "Namespace", lfield(1, vfield(1, 7))), "metadata.name: expected a length-delimited"),
    (envelope("v1", "Namespace", lfield(1, lfield(1, b"\xff\xfe"))), "metadata.name: string is not UTF-8"),
    (envelope("apps/v1", "Deployment", lfield(2, lfield(1, b"x"))), "spec.replicas: expected a varint"),
    (envelope("v1", "Namespace", lfield(1, b"\x0a\x05x")), "claims 5 bytes but only 1 remain"),
    (envelope("v1", "Namespace", b"") + lfield(3, b"gzip"), "unsupported contentEncoding 'gzip'"),
])
def test_malformed_bodies_raise_protobuf_error_with_the_reason(body: bytes, reason: str) -> None:
    with pytest.raises(ProtobufError, match=reason.replace("(", r"\(")) as info:
        decode_k8s_protobuf(body)
    assert isinstance(info.value, ValueError)


def test_encoding_an_unknown_field_is_refused_with_its_path() -> None:
    with pytest.raises(ProtobufError, match="spec: no protobuf field for bogus"):
        encode_k8s_protobuf({"kind": "Deployment", "apiVersion": "apps/v1", "spec": {"bogus": 1}})
