"""Service and EndpointSlice defaults and validation, as Kubernetes has them (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from sigma.api import service_kinds
from sigma.api.validation import apply_defaults, validate


@pytest.fixture(autouse=True)
def _kinds() -> None:
    service_kinds.register_kinds()


def svc(name: str = "web", **spec: Any) -> dict[str, Any]:
    obj = {"metadata": {"name": name, "namespace": "default"}, "spec": {"ports": [{"port": 80}], **spec}}
    apply_defaults("Service", obj)
    return obj


def fields(causes: list[Any]) -> dict[str, str]:
    return {c.field: c.message for c in causes}


def test_defaults_are_kubernetes() -> None:
    spec = svc()["spec"]
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster" and "externalTrafficPolicy" not in spec
    node_port = svc(type="NodePort")["spec"]
    assert node_port["externalTrafficPolicy"] == "Cluster"
    affinity = svc(sessionAffinity="ClientIP")["spec"]
    assert affinity["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    named = svc(ports=[{"port": 80, "targetPort": "http"}])["spec"]
    assert named["ports"][0]["targetPort"] == "http"


def test_a_valid_service_has_no_causes() -> None:
    assert validate("Service", svc(selector={"app": "web"})) == []
    assert validate("Service", svc(clusterIP="None", ports=[])) == []
    assert validate("Service", svc(type="ExternalName", externalName="db.example.com", ports=[])) == []


@pytest.mark.parametrize(("spec", "field", "says"), [
    ({"ports": [{"port": 80}, {"port": 81}]}, "spec.ports[0].name", "Required value"),
    ({"ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]}, "spec.ports[1]", "Duplicate value"),
    ({"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]}, "spec.ports[1].name", "Duplicate value"),
    ({"ports": [{"port": 80, "name": "Web"}]}, "spec.ports[0].name", "RFC 1123 label"),
    ({"ports": [{"port": 0}]}, "spec.ports[0].port", "between 1 and 65535"),
    ({"ports": [{"port": 80, "protocol": "ICMP"}]}, "spec.ports[0].protocol", "Unsupported value"),
    ({"ports": [{"port": 80, "targetPort": "no_such"}]}, "spec.ports[0].targetPort", "alpha-numeric"),
    ({"ports": []}, "spec.ports", "Required value"),
    ({"ports": [{"port": 80, "nodePort": 30080}]}, "spec.ports[0].nodePort", "may not be used when `type` is"),
    ({"type": "Balancer"}, "spec.type", "Unsupported value"),
    ({"clusterIP": "10.96.0.300"}, "spec.clusterIPs[0]", "must be a valid IP address"),
    ({"sessionAffinity": "Sticky"}, "spec.sessionAffinity", "Unsupported value"),
    ({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}},
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds", "greater than 0"),
    ({"externalTrafficPolicy": "Local"}, "spec.externalTrafficPolicy", "may only be set"),
    ({"type": "NodePort", "clusterIP": "None"}, "spec.clusterIPs[0]", "may not be set to 'None'"),
    ({"type": "ExternalName", "ports": []}, "spec.externalName", "Required value"),
    ({"ipFamilies": ["IPv6"]}, "spec.ipFamilies[0]", "not configured"),
])
def test_invalid_services_name_the_field(spec: dict[str, Any], field: str, says: str) -> None:
    causes = fields(validate("Service", svc(**spec)))
    assert field in causes and says in causes[field], causes


def test_a_service_name_must_be_a_dns1035_label() -> None:
    causes = fields(validate("Service", svc("1web")))
    assert "DNS-1035 label" in causes["metadata.name"]


def test_cluster_ip_may_not_change_but_an_update_without_one_keeps_it() -> None:
    old = svc(clusterIP="10.96.0.5")
    moved = svc(clusterIP="10.96.0.6")
    assert "may not change" in fields(validate("Service", moved, old))["spec.clusterIPs[0]"]
    assert validate("Service", svc(), old) == []
    headless = svc(clusterIP="None")
    assert "spec.clusterIPs[0]" in fields(validate("Service", headless, old))
    assert validate("Service", svc(type="ExternalName", externalName="x.example.com"), old) == []


def test_changing_type_from_node_port_drops_the_stored_node_ports() -> None:
    old = svc(type="NodePort", ports=[{"port": 80, "nodePort": 30080}])
    back = svc(ports=[{"port": 80, "nodePort": 30080}])
    assert validate("Service", back, old) == []


def eps(**fields_: Any) -> dict[str, Any]:
    obj = {"metadata": {"name": "web-abc", "namespace": "default"}, "addressType": "IPv4", **fields_}
    apply_defaults("EndpointSlice", obj)
    return obj


def test_a_valid_endpoint_slice_and_its_defaults() -> None:
    obj = eps(endpoints=[{"addresses": ["10.0.0.1"], "conditions": {"ready": True}, "nodeName": "n1"}],
              ports=[{"port": 8080}])
    assert obj["ports"] == [{"port": 8080, "protocol": "TCP", "name": ""}]
    assert validate("EndpointSlice", obj) == []


@pytest.mark.parametrize(("obj", "field", "says"), [
    ({"addressType": ""}, "addressType", "Required value"),
    ({"addressType": "IPX"}, "addressType", "Unsupported value"),
    ({"endpoints": [{"addresses": []}]}, "endpoints[0].addresses", "at least 1"),
    ({"endpoints": [{"addresses": ["fd00::1"]}]}, "endpoints[0].addresses[0]", "valid IPv4"),
    ({"endpoints": [{"addresses": [f"10.0.{i // 256}.{i % 256}" for i in range(101)]}]},
     "endpoints[0].addresses", "at most 100"),
    ({"endpoints": [{"addresses": ["10.0.0.1"]}] * 1001}, "endpoints", "at most 1000"),
    ({"ports": [{"port": 1, "name": f"p{i}"} for i in range(101)]}, "ports", "at most 100"),
    ({"ports": [{"port": 1, "name": "a"}, {"port": 2, "name": "a"}]}, "ports[1].name", "Duplicate"),
    ({"ports": [{"port": 1, "protocol": "ICMP"}]}, "ports[0].protocol", "Unsupported"),
    ({"endpoints": [{"addresses": ["10.0.0.1"], "hostname": "Bad_Host"}]}, "endpoints[0].hostname", "RFC 1123"),
])
def test_invalid_endpoint_slices_name_the_field(obj: dict[str, Any], field: str, says: str) -> None:
    causes = fields(validate("EndpointSlice", eps(**obj)))
    assert field in causes and says in causes[field], causes


def test_the_address_type_is_immutable() -> None:
    assert "immutable" in fields(validate("EndpointSlice", eps(addressType="IPv6"), eps()))["addressType"]
