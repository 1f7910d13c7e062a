"""Defaults and validation of ConfigMap and Secret, as Kubernetes has them. Pure functions.

- Keys of ``data`` / ``binaryData`` / ``stringData`` are config keys: ``[-._a-zA-Z0-9]+``, at
  most 253 characters, not ``.`` or ``..`` nor starting with ``..``.
- A ConfigMap key may not be in both ``data`` and ``binaryData``.
- Everything together is at most 1 MiB (MaxSecretSize, also the ConfigMap limit).
- A Secret's ``data`` values are base64; ``stringData`` is merged into ``data`` on every write
  (its values win) and never stored; ``type`` defaults to Opaque, is fixed once created, and
  the types Kubernetes knows require their keys.
- ``immutable: true`` freezes the data, and cannot be unset.

Messages never quote a value of the data: a Secret's content must not end up in an error
shown to a client, the audit log or the master's log.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from sigma.api import errors
from sigma.api.errors import Cause

MAX_SIZE_B = 1024 * 1024  # core.MaxSecretSize: 1 MiB, for ConfigMaps too
MAX_KEY_LENGTH = 253
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',"
                   "  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
IMMUTABLE_MSG = "field is immutable when `immutable` is set"

OPAQUE = "Opaque"
SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"
DOCKERCFG = "kubernetes.io/dockercfg"
DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
BASIC_AUTH = "kubernetes.io/basic-auth"
SSH_AUTH = "kubernetes.io/ssh-auth"
TLS = "kubernetes.io/tls"
BOOTSTRAP_TOKEN = "bootstrap.kubernetes.io/token"
SERVICE_ACCOUNT_NAME_ANNOTATION = "kubernetes.io/service-account.name"
# The keys each type must have (any one of a tuple's alternatives for basic-auth).
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    DOCKERCFG: (".dockercfg",),
    DOCKER_CONFIG_JSON: (".dockerconfigjson",),
    SSH_AUTH: ("ssh-privatekey",),
    TLS: ("tls.key", "tls.crt"),
    BOOTSTRAP_TOKEN: ("token-id", "token-secret"),
}
JSON_KEYS = {DOCKERCFG: ".dockercfg", DOCKER_CONFIG_JSON: ".dockerconfigjson"}


def config_key_errors(key: str) -> list[str]:
    """IsConfigMapKey: what is wrong with ``key`` ([] when it is a valid key)."""
    out = []
    if len(key) > MAX_KEY_LENGTH:
        out.append(f"must be no more than {MAX_KEY_LENGTH} characters")
    if not _CONFIG_KEY.match(key):
        out.append(_CONFIG_KEY_MSG)
    if key == ".":
        out.append("must not be '.'")
    elif key == "..":
        out.append("must not be '..'")
    elif key.startswith(".."):
        out.append("must not start with '..'")
    return out


def _key_causes(values: Any, path: str) -> list[Cause]:
    causes = []
    for key in values or {}:
        for message in config_key_errors(key):
            causes.append(Cause(f"{path}[{key}]", f"Invalid value: {json.dumps(key)}: {message}"))
    return causes


def decoded(value: str) -> bytes:
    """A base64 value of ``data`` (strict: what Go's StdEncoding accepts)."""
    return base64.b64decode(value, validate=True)


def _size_error(path: str) -> Cause:
    return Cause(path, f"Too long: may not be more than {MAX_SIZE_B} bytes", "FieldValueTooLong")


def _immutable_causes(obj: dict[str, Any], old: dict[str, Any] | None, fields: tuple[str, ...]) -> list[Cause]:
    if old is None or old.get("immutable") is not True:
        return []
    causes = []
    if obj.get("immutable") is not True:
        causes.append(Cause("immutable", f"Forbidden: {IMMUTABLE_MSG}", "FieldValueForbidden"))
    for name in fields:
        if (obj.get(name) or {}) != (old.get(name) or {}):
            causes.append(Cause(name, f"Forbidden: {IMMUTABLE_MSG}", "FieldValueForbidden"))
    return causes


# -- ConfigMap -------------------------------------------------------------------------------
def validate_config_map(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
    causes = _key_causes(data, "data") + _key_causes(binary, "binaryData")
    for key in binary:
        if key in data:
            causes.append(Cause(f"data[{key}]", f"Invalid value: {json.dumps(key)}: duplicate of key present in "
                                "binaryData"))
        try:
            decoded(binary[key])
        except (binascii.Error, ValueError):
            causes.append(Cause(f"binaryData[{key}]", "Invalid value: must be base64-encoded"))
    size = sum(len(k) + len(v.encode()) for k, v in data.items())
    size += sum(len(k) + len(v) * 3 // 4 for k, v in binary.items())
    if size > MAX_SIZE_B:
        # Kubernetes names no field: the limit is on the object as a whole.
        causes.append(_size_error(""))
    return causes + _immutable_causes(obj, old, ("data", "binaryData"))


# -- Secret ----------------------------------------------------------------------------------
def default_secret(obj: dict[str, Any]) -> None:
    """Type Opaque unless given; ``stringData`` merged into ``data`` (base64) and dropped, as
    the API's conversion does on every write. A ``data`` value that is not base64 is refused
    with 400, as Kubernetes' decoder does (without echoing it)."""
    if not obj.get("type"):
        obj["type"] = OPAQUE
    data = obj.get("data")
    if not isinstance(data, dict):
        data = {}
    for key, value in data.items():
        try:
            decoded(value)
        except (binascii.Error, ValueError):
            raise errors.bad_request(f'Secret in version "v1" cannot be handled as a Secret: illegal base64 data '
                                     f'in data[{key}]') from None
    plain = obj.pop("stringData", None)
    if isinstance(plain, dict) and plain:
        data = {**data, **{k: base64.b64encode(str(v).encode()).decode() for k, v in plain.items()}}
    if data:
        obj["data"] = data
    else:
        obj.pop("data", None)


def secret_size(data: dict[str, str]) -> int:
    return sum(len(k) + len(decoded(v)) for k, v in data.items())


def validate_secret(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    data: dict[str, str] = obj.get("data") or {}
    causes = _key_causes(data, "data")
    if secret_size(data) > MAX_SIZE_B:
        causes.append(_size_error("data"))
    stype = obj.get("type") or OPAQUE
    if stype == SERVICE_ACCOUNT_TOKEN:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if not annotations.get(SERVICE_ACCOUNT_NAME_ANNOTATION):
            causes.append(Cause(f"metadata.annotations[{SERVICE_ACCOUNT_NAME_ANNOTATION}]", "Required value",
                                "FieldValueRequired"))
    elif stype == BASIC_AUTH:
        if "username" not in data and "password" not in data:
            causes += [Cause("data[username]", "Required value", "FieldValueRequired"),
                       Cause("data[password]", "Required value", "FieldValueRequired")]
    else:
        for key in REQUIRED_KEYS.get(stype, ()):
            if key not in data:
                causes.append(Cause(f"data[{key}]", "Required value", "FieldValueRequired"))
        json_key = JSON_KEYS.get(stype)
        if json_key and json_key in data:
            try:
                json.loads(decoded(data[json_key]))
            except ValueError:
                causes.append(Cause(f"data[{json_key}]", "Invalid value: \"<secret contents redacted>\": invalid "
                                    "JSON"))
    if old is not None and (old.get("type") or OPAQUE) != stype:
        causes.append(Cause("type", f"Invalid value: {json.dumps(stype)}: field is immutable"))
    return causes + _immutable_causes(obj, old, ("data",))
