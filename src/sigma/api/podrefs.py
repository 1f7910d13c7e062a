"""The ConfigMaps, Secrets and ServiceAccount a pod references, as Kubernetes' node
authorizer reads its graph: volumes (and projected sources), env and envFrom of every
container (init and ephemeral too), and imagePullSecrets. Pure: a pod dict in, names out.

The agent asks the master for exactly these objects; the master lets a node read a Secret or
ConfigMap only when a pod bound to it references it (sigma.api.auth.noderestriction).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PodReferences:
    config_maps: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)
    service_account: str = ""
    # A projected serviceAccountToken source: the node may request the account's token for it.
    wants_token: bool = False


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _name(ref: Any) -> str:
    return str(ref.get("name") or "") if isinstance(ref, dict) else ""


def pod_references(pod: dict[str, Any]) -> PodReferences:
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    out = PodReferences(service_account=str(spec.get("serviceAccountName") or spec.get("serviceAccount") or ""))
    for volume in _dicts(spec.get("volumes")):
        if isinstance(volume.get("configMap"), dict):
            out.config_maps.add(_name(volume["configMap"]))
        if isinstance(volume.get("secret"), dict):
            out.secrets.add(str(volume["secret"].get("secretName") or ""))
        projected = volume.get("projected") if isinstance(volume.get("projected"), dict) else {}
        assert isinstance(projected, dict)
        for source in _dicts(projected.get("sources")):
            if isinstance(source.get("configMap"), dict):
                out.config_maps.add(_name(source["configMap"]))
            if isinstance(source.get("secret"), dict):
                out.secrets.add(_name(source["secret"]))
            if isinstance(source.get("serviceAccountToken"), dict):
                out.wants_token = True
    containers = [*_dicts(spec.get("initContainers")), *_dicts(spec.get("containers")),
                  *_dicts(spec.get("ephemeralContainers"))]
    for container in containers:
        for source in _dicts(container.get("envFrom")):
            if isinstance(source.get("configMapRef"), dict):
                out.config_maps.add(_name(source["configMapRef"]))
            if isinstance(source.get("secretRef"), dict):
                out.secrets.add(_name(source["secretRef"]))
        for env in _dicts(container.get("env")):
            value_from = env.get("valueFrom") if isinstance(env.get("valueFrom"), dict) else {}
            assert isinstance(value_from, dict)
            if isinstance(value_from.get("configMapKeyRef"), dict):
                out.config_maps.add(_name(value_from["configMapKeyRef"]))
            if isinstance(value_from.get("secretKeyRef"), dict):
                out.secrets.add(_name(value_from["secretKeyRef"]))
    for ref in _dicts(spec.get("imagePullSecrets")):
        out.secrets.add(_name(ref))
    out.config_maps.discard("")
    out.secrets.discard("")
    return out


def references(pod: dict[str, Any], resource: str, name: str) -> bool:
    """Does ``pod`` reference the object ``resource``/``name`` (configmaps, secrets,
    serviceaccounts) of its own namespace?"""
    refs = pod_references(pod)
    if resource == "configmaps":
        return name in refs.config_maps
    if resource == "secrets":
        return name in refs.secrets
    if resource == "serviceaccounts":
        return refs.wants_token and refs.service_account == name
    return False
