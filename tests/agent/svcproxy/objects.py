"""Services and EndpointSlices as the API returns them, made by hand for the tests."""

from __future__ import annotations

from typing import Any


def service(name: str, cluster_ip: str, ports: list[dict[str, Any]], namespace: str = "default",
            **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterIP": cluster_ip, "type": "ClusterIP", "ports": ports, **spec}}


def endpoint(ip: str, ready: bool | None = True, serving: bool | None = None, terminating: bool | None = None,
             hostname: str | None = None, node_name: str | None = None) -> dict[str, Any]:
    cond = {k: v for k, v in (("ready", ready), ("serving", serving), ("terminating", terminating)) if v is not None}
    ep: dict[str, Any] = {"addresses": [ip], "conditions": cond}
    if hostname:
        ep["hostname"] = hostname
    if node_name:
        ep["nodeName"] = node_name
    return ep


def endpoint_slice(name: str, service_name: str, ports: list[dict[str, Any]], endpoints: list[dict[str, Any]],
                   namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "ports": ports, "endpoints": endpoints}
