"""/openapi/v2 in protobuf: the gnostic openapi.v2.Document kubectl asks for first.

kubectl requests ``application/com.github.proto-openapi.spec.v2@v1.0+protobuf`` and neither
falls back to JSON on 406 nor on 404: a server that answers anything else makes ``kubectl
apply`` fail with "proto: cannot parse invalid wire-format data" before it can say what is
wrong with the manifest. The document Sigma publishes (definitions only, no paths) is
encoded here with the field numbers of gnostic's OpenAPIv2.proto; vendor extensions
(x-kubernetes-group-version-kind...) are ``Any`` values holding YAML, as Kubernetes sends them.
"""

from __future__ import annotations

import struct
from functools import cache
from typing import Any

import yaml

from sigma.api.openapi import openapi_v2

MEDIA_TYPE = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
# The Content-Type kube-apiserver answers it with.
OPENAPI_V2_PROTOBUF_RESPONSE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _bytes(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _string(field: int, text: str) -> bytes:
    return _bytes(field, text.encode()) if text else b""


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _double(field: int, value: float) -> bytes:
    return _varint(field << 3 | 1) + struct.pack("<d", float(value))


def _any(value: Any) -> bytes:
    """openapi.v2.Any: the value as YAML (field 2)."""
    return _string(2, yaml.safe_dump(value, default_flow_style=False))


def _named_any(name: str, value: Any) -> bytes:
    return _string(1, name) + _bytes(2, _any(value))


_STRING_FIELDS = {"$ref": 1, "format": 2, "title": 3, "description": 4, "pattern": 13, "discriminator": 26}
_DOUBLE_FIELDS = {"multipleOf": 6, "maximum": 7, "minimum": 9}
_INT_FIELDS = {"maxLength": 11, "minLength": 12, "maxItems": 14, "minItems": 15, "maxProperties": 17,
               "minProperties": 18}
_BOOL_FIELDS = {"exclusiveMaximum": 8, "exclusiveMinimum": 10, "uniqueItems": 16, "readOnly": 27}


def _schema(schema: dict[str, Any]) -> bytes:
    out = bytearray()
    for key, value in schema.items():
        if key in _STRING_FIELDS:
            out += _string(_STRING_FIELDS[key], str(value))
        elif key in _DOUBLE_FIELDS:
            out += _double(_DOUBLE_FIELDS[key], value)
        elif key in _INT_FIELDS:
            out += _int(_INT_FIELDS[key], int(value))
        elif key in _BOOL_FIELDS:
            out += _int(_BOOL_FIELDS[key], 1) if value else b""
        elif key == "default":
            out += _bytes(5, _any(value))
        elif key == "required":
            out += b"".join(_string(19, name) for name in value)
        elif key == "enum":
            out += b"".join(_bytes(20, _any(item)) for item in value)
        elif key == "additionalProperties":
            # AdditionalPropertiesItem: a oneof of a schema (1) or a boolean (2, sent even if false).
            out += _bytes(21, _bytes(1, _schema(value)) if isinstance(value, dict) else _int(2, int(bool(value))))
        elif key == "type":
            out += _bytes(22, b"".join(_string(1, t) for t in ([value] if isinstance(value, str) else value)))
        elif key == "items":
            items = value if isinstance(value, list) else [value]
            out += _bytes(23, b"".join(_bytes(1, _schema(item)) for item in items))
        elif key == "allOf":
            out += b"".join(_bytes(24, _schema(item)) for item in value)
        elif key == "properties":
            out += _bytes(25, b"".join(_bytes(1, _string(1, name) + _bytes(2, _schema(sub)))
                                       for name, sub in value.items()))
        elif key == "example":
            out += _bytes(30, _any(value))
        elif key.startswith("x-"):
            out += _bytes(31, _named_any(key, value))
    return bytes(out)


@cache
def openapi_v2_protobuf() -> bytes:
    doc = openapi_v2()
    info = doc.get("info") or {}
    definitions = b"".join(_bytes(1, _string(1, name) + _bytes(2, _schema(schema)))
                           for name, schema in doc["definitions"].items())
    info_message = _string(1, info.get("title", "")) + _string(2, info.get("version", ""))
    return _string(1, doc["swagger"]) + _bytes(2, info_message) + _bytes(8, b"") + _bytes(9, definitions)


def wants_protobuf(accept: str) -> bool:
    """The client asked for the protobuf document (kubectl does, alone in its Accept header)."""
    return any(item.split(";")[0].strip().lower() == MEDIA_TYPE.lower() for item in accept.split(","))
