"""ConfigMap, Secret and ServiceAccount in the API: schemas, defaults, validation and the
`kubectl get` columns (NAME DATA AGE, NAME TYPE DATA AGE, NAME SECRETS AGE, as kubectl prints
them). Installed by sigma.api.admission.install; Secrets are encrypted in the store by
sigma.api.encrypted_store, ServiceAccount tokens are sigma.api.satokens'.
"""

from __future__ import annotations

from typing import Any

from sigma.api.configsecret_validation import default_secret, validate_config_map, validate_secret
from sigma.api.registry import Registry
from sigma.api.schema import BOOL, STR, arr, boolean, kind_schema, mapof, obj, register_schema, string
from sigma.api.tables import age, register_printer
from sigma.api.validation import register_defaults, register_validator

CONFIG_MAP_SCHEMA = kind_schema(
    doc="Configuration data for pods to consume: environment variables, command-line arguments or files.",
    data=mapof(STR, "UTF-8 values by key; keys are config keys ([-._a-zA-Z0-9]+)."),
    binaryData=mapof(STR, "Binary values (base64) by key; a key may not also be in data."),
    immutable=boolean("When true, data and binaryData can no longer change (the object can only be deleted)."),
)
SECRET_SCHEMA = kind_schema(
    doc="Secret data (passwords, tokens, keys), encrypted where the master stores it.",
    data=mapof(STR, "Values by key, base64-encoded; keys are config keys ([-._a-zA-Z0-9]+)."),
    stringData=mapof(STR, "Write-only plain values merged into data on write (they win over data); never read "
                          "back."),
    type=string("Opaque (default), kubernetes.io/service-account-token, kubernetes.io/dockercfg, "
                "kubernetes.io/dockerconfigjson, kubernetes.io/basic-auth, kubernetes.io/ssh-auth, "
                "kubernetes.io/tls or bootstrap.kubernetes.io/token; fixed once created."),
    immutable=boolean("When true, data can no longer change (the object can only be deleted)."),
)
OBJECT_REFERENCE = obj(kind=STR, namespace=STR, name=STR, uid=STR, apiVersion=STR, resourceVersion=STR,
                       fieldPath=STR)
SERVICE_ACCOUNT_SCHEMA = kind_schema(
    doc="An identity for processes that run in a pod.",
    secrets=arr(OBJECT_REFERENCE, "name", "Secrets pods of this account may use (legacy)."),
    imagePullSecrets=arr(obj(name=STR), "name", "Secrets used to pull the images of the account's pods."),
    automountServiceAccountToken=BOOL.doc("Whether pods of this account get an API token mounted (default "
                                          "true); a pod's own setting wins."),
)


def install(registry: Registry) -> None:
    from sigma.api import serviceaccount_admission

    register_schema("ConfigMap", CONFIG_MAP_SCHEMA)
    register_schema("Secret", SECRET_SCHEMA)
    register_schema("ServiceAccount", SERVICE_ACCOUNT_SCHEMA)
    register_validator("ConfigMap", validate_config_map)
    register_validator("Secret", validate_secret)
    register_defaults("Secret", default_secret)
    register_printer("ConfigMap", [("Name", "string", 0), ("Data", "integer", 0), ("Age", "string", 0)],
                     config_map_row)
    register_printer("Secret", [("Name", "string", 0), ("Type", "string", 0), ("Data", "integer", 0),
                                ("Age", "string", 0)], secret_row)
    register_printer("ServiceAccount", [("Name", "string", 0), ("Secrets", "integer", 0), ("Age", "string", 0)],
                     service_account_row)
    serviceaccount_admission.install(registry)


def config_map_row(cm: dict[str, Any], now: float) -> list[Any]:
    return [cm["metadata"]["name"], len(cm.get("data") or {}) + len(cm.get("binaryData") or {}), age(cm, now)]


def secret_row(secret: dict[str, Any], now: float) -> list[Any]:
    return [secret["metadata"]["name"], secret.get("type") or "Opaque", len(secret.get("data") or {}),
            age(secret, now)]


def service_account_row(sa: dict[str, Any], now: float) -> list[Any]:
    return [sa["metadata"]["name"], len(sa.get("secrets") or []), age(sa, now)]
