"""The objects a pod references, as the node authorizer's graph has them."""

from __future__ import annotations

from sigma.api.podrefs import pod_references, references
from sigma.api.serviceaccount_admission import api_access_volume

POD = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {
    "serviceAccountName": "robot",
    "imagePullSecrets": [{"name": "pull"}],
    "volumes": [{"name": "a", "configMap": {"name": "cm-vol"}}, {"name": "b", "secret": {"secretName": "s-vol"}},
                {"name": "c", "projected": {"sources": [{"configMap": {"name": "cm-proj"}},
                                                        {"secret": {"name": "s-proj"}}]}},
                api_access_volume("xyz")],
    "initContainers": [{"name": "i", "envFrom": [{"configMapRef": {"name": "cm-init"}}]}],
    "containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "s-from"}}],
                    "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm-key", "key": "k"}}},
                            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s-key", "key": "k"}}},
                            {"name": "C", "value": "plain"}]}]}}


def test_every_reference_is_found() -> None:
    refs = pod_references(POD)
    assert refs.config_maps == {"cm-vol", "cm-proj", "kube-root-ca.crt", "cm-init", "cm-key"}
    assert refs.secrets == {"pull", "s-vol", "s-proj", "s-from", "s-key"}
    assert refs.service_account == "robot" and refs.wants_token


def test_references_by_resource() -> None:
    assert references(POD, "secrets", "s-key") and not references(POD, "secrets", "other")
    assert references(POD, "configmaps", "cm-init") and not references(POD, "configmaps", "s-key")
    assert references(POD, "serviceaccounts", "robot") and not references(POD, "serviceaccounts", "default")
    assert not references({"spec": {"serviceAccountName": "robot"}}, "serviceaccounts", "robot")  # no token mounted


def test_malformed_pods_reference_nothing() -> None:
    assert pod_references({"spec": {"volumes": "x", "containers": [1, {"env": [None]}]}}).secrets == set()
