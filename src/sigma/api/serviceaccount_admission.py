"""The ServiceAccount admission of pods, as Kubernetes' plugin of that name does it.

On creation a pod gets ``spec.serviceAccountName`` (``default`` unless given; the
deprecated ``serviceAccount`` mirrors it) and, unless ``automountServiceAccountToken`` is
false on the pod (or, when the pod does not say, on its ServiceAccount), a projected
volume ``kube-api-access-<random>`` mounted read-only at
/var/run/secrets/kubernetes.io/serviceaccount in every container, with ``token`` (a
ServiceAccount token the agent requests and refreshes), ``ca.crt`` (the ``kube-root-ca.crt``
ConfigMap of the namespace) and ``namespace``. A pod naming a ServiceAccount that does not
exist is refused (403); the ``default`` one may still be on its way (the serviceaccount
controller makes it in every namespace), so a pod is not refused for its absence.
"""

from __future__ import annotations

from typing import Any

from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.api.uids import new_uid_hex

SERVICE_ACCOUNTS = resource("serviceaccounts")
DEFAULT_ACCOUNT = "default"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
TOKEN_EXPIRATION_S = 3607  # what the kubelet asks for (an hour and a little)
DEFAULT_MODE = 0o644


def api_access_volume(suffix: str) -> dict[str, Any]:
    return {"name": f"{VOLUME_PREFIX}{suffix}", "projected": {"defaultMode": DEFAULT_MODE, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_S, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIG_MAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                      "fieldPath": "metadata.namespace"}}]}},
    ]}}


def admit_pod(pod: dict[str, Any], account: dict[str, Any] | None, suffix: str) -> None:
    """Name the pod's account and mount its token (pure: the account as read, if it exists)."""
    spec = pod.setdefault("spec", {})
    name = spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT_ACCOUNT
    spec["serviceAccountName"] = spec["serviceAccount"] = name
    automount = spec.get("automountServiceAccountToken")
    if automount is None:
        automount = (account or {}).get("automountServiceAccountToken")
    if automount is False:
        return
    containers = [c for c in (*(spec.get("initContainers") or []), *(spec.get("containers") or []))
                  if isinstance(c, dict)]
    if any(m.get("mountPath") == MOUNT_PATH for c in containers for m in c.get("volumeMounts") or []):
        return  # the pod mounts something of its own there
    volume = api_access_volume(suffix)
    spec["volumes"] = [*(spec.get("volumes") or []), volume]
    for container in containers:
        container["volumeMounts"] = [*(container.get("volumeMounts") or []),
                                     {"name": volume["name"], "readOnly": True, "mountPath": MOUNT_PATH}]


def install(registry: Registry) -> None:
    def hook(pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        if old is not None:
            return  # the account and its volume are fixed at creation
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        name = spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT_ACCOUNT
        try:
            account: dict[str, Any] | None = registry.get(SERVICE_ACCOUNTS, meta.get("namespace"), name)
        except ApiError as err:
            if err.code != 404:
                raise
            account = None
            if name != DEFAULT_ACCOUNT:
                raise ApiError(403, "Forbidden", f'pods "{meta.get("name", "")}" is forbidden: error looking up '
                               f'service account {meta.get("namespace")}/{name}: serviceaccount "{name}" not found',
                               kind="pods", name=meta.get("name", "")) from None
        admit_pod(pod, account, new_uid_hex()[:5])

    registry.add_admission("Pod", hook)
