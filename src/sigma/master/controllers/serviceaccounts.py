"""Every namespace has a ``default`` ServiceAccount and the ``kube-root-ca.crt`` ConfigMap
(the cluster CA pods verify the API with), as Kubernetes' serviceaccounts-controller and
root-ca-cert-publisher make them: recreated when deleted, the CA kept current.

One pass lists the namespaces, the default accounts and the CA ConfigMaps (three lists,
whatever the number of namespaces) and creates or fixes what is missing; the decision is
the pure ``missing``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from sigma.api.errors import ApiError
from sigma.client.base import ApiClient
from sigma.master.controllers.periodic import run_periodic
from sigma.master.guard import guarded

log = logging.getLogger("sigma.controllers.serviceaccounts")
PERIOD_S = 1.0
DEFAULT_ACCOUNT = "default"
ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
COMPONENT = "serviceaccount-controller"


@dataclass
class Plan:
    accounts: list[str] = field(default_factory=list)  # namespaces without a default account
    create_ca: list[str] = field(default_factory=list)  # namespaces without the CA ConfigMap
    update_ca: list[str] = field(default_factory=list)  # namespaces whose CA ConfigMap is stale


def missing(namespaces: list[dict[str, Any]], accounts: set[str], ca_maps: dict[str, dict[str, Any]],
            ca_pem: str) -> Plan:
    """What to create in which namespace (pure). Terminating namespaces get nothing."""
    plan = Plan()
    for ns in namespaces:
        name = ns["metadata"]["name"]
        if ns["metadata"].get("deletionTimestamp"):
            continue
        if name not in accounts:
            plan.accounts.append(name)
        cm = ca_maps.get(name)
        if cm is None:
            plan.create_ca.append(name)
        elif (cm.get("data") or {}).get("ca.crt") != ca_pem:
            plan.update_ca.append(name)
    return plan


class ServiceAccountsController:
    name = "serviceaccounts"

    def __init__(self, client: ApiClient, ca_pem: str = "", period_s: float = PERIOD_S) -> None:
        self.client, self.ca_pem, self.period_s = client, ca_pem, period_s

    def run(self, stop: threading.Event) -> None:
        run_periodic(stop, self.sync, self.period_s, "service accounts", log)

    def sync(self) -> Plan:
        namespaces = self.client.list("namespaces")["items"]
        accounts = {sa["metadata"]["namespace"] for sa in self.client.list(
            "serviceaccounts", field_selector=f"metadata.name={DEFAULT_ACCOUNT}")["items"]}
        ca_maps = {cm["metadata"]["namespace"]: cm for cm in self.client.list(
            "configmaps", field_selector=f"metadata.name={ROOT_CA_CONFIG_MAP}")["items"]}
        plan = missing(namespaces, accounts, ca_maps, self.ca_pem)
        by_name = {ns["metadata"]["name"]: ns for ns in namespaces}
        for ns in plan.accounts:
            self._each(by_name[ns], lambda ns=ns: self._create("serviceaccounts", ns, {"metadata": {
                "name": DEFAULT_ACCOUNT}}))
        for ns in plan.create_ca:
            self._each(by_name[ns], lambda ns=ns: self._create("configmaps", ns, self._ca_map()))
        for ns in plan.update_ca:
            self._each(by_name[ns], lambda ns=ns: self.client.patch(
                "configmaps", ROOT_CA_CONFIG_MAP, {"data": {"ca.crt": self.ca_pem}}, ns))
        return plan

    def _ca_map(self) -> dict[str, Any]:
        return {"metadata": {"name": ROOT_CA_CONFIG_MAP, "annotations": {
            "kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when "
                                         "using internal endpoints such as the internal service IP or "
                                         "kubernetes.default.svc. No other usage is guaranteed across distributions "
                                         "of Kubernetes clusters."}},
                "data": {"ca.crt": self.ca_pem}}

    def _create(self, resource: str, namespace: str, obj: dict[str, Any]) -> None:
        try:
            self.client.create(resource, obj, namespace)
        except ApiError as err:
            if err.reason != "AlreadyExists" and not (err.code == 403 and "terminated" in err.message):
                raise

    def _each(self, ns: dict[str, Any], step: Any) -> None:
        # One namespace's failure is an Event on it; the others are still served.
        guarded(self.client, {"kind": "Namespace", "apiVersion": "v1", **ns}, COMPONENT, "FailedCreate", step,
                "creating the default ServiceAccount")
