"""Kubernetes protobuf request bodies, as the JSON objects the rest of the API server handles.

kubectl's typed clients (``kubectl create deployment``, ``create namespace``,
``create priorityclass``, the deletes of ``kubectl drain``...) send their bodies as
``application/vnd.kubernetes.protobuf`` and never retry as JSON. Sigma stores and serves
JSON, so such a body is turned into the dict its JSON form would have parsed to, and from
there it takes the same validation path as any other request.

The wire format is read here directly (varints, length-delimited fields) with the field
tables of ``sigma.api.protobuf_schema``; no protobuf library is needed. A body is the
magic ``k8s\\x00`` and a runtime.Unknown message: typeMeta = 1 {apiVersion = 1, kind = 2},
raw = 2 (the object's message), contentEncoding = 3, contentType = 4.

``encode_k8s_protobuf`` is the inverse, from the same tables; Sigma's tests use it to
build bodies.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sigma.api.protobuf_schema import (
    ANY_VERSION_KINDS,
    BOOL,
    BYTES,
    INT,
    INT_OR_STRING,
    KINDS,
    MAP,
    MESSAGE,
    MESSAGES,
    MICROTIME,
    QUANTITY,
    RAW_JSON,
    STR,
    TIME,
    Field,
)

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
_VARINT_KINDS = frozenset({INT, BOOL})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_VARINT_BYTES = 10  # 64 bits, 7 per byte


class ProtobufError(ValueError):
    """The body is not a Kubernetes protobuf object Sigma can read; the message says why."""


# --- reading the wire format -------------------------------------------------------------


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= len(buf):
            raise ProtobufError(f"truncated varint at byte {pos}")
        byte = buf[pos + i]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos + i + 1
        shift += 7
    raise ProtobufError(f"varint longer than {_MAX_VARINT_BYTES} bytes at byte {pos}")


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of a message, in wire order. Varints
    come back as ints, everything else as the raw bytes of the field."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError(f"field number 0 at byte {pos}")
        value: int | bytes
        if wire == VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire in (LENGTH, FIXED64, FIXED32):
            if wire == LENGTH:
                size, pos = _read_varint(buf, pos)
            else:
                size = 8 if wire == FIXED64 else 4
            if pos + size > len(buf):
                raise ProtobufError(f"field {number} claims {size} bytes but only {len(buf) - pos} remain")
            value, pos = buf[pos:pos + size], pos + size
        else:
            # Groups (3, 4) are a proto1 relic no Kubernetes message uses.
            raise ProtobufError(f"unsupported wire type {wire} for field {number}")
        yield number, wire, value


def _signed(value: int) -> int:
    """int32 and int64 are plain varints of the two's complement 64-bit value, so a
    negative number arrives as a 10-byte varint at or above 2**63."""
    return value - (1 << 64) if value >= 1 << 63 else value


# --- decoding ----------------------------------------------------------------------------


def decode_k8s_protobuf(data: bytes) -> dict[str, Any]:
    """The JSON-shaped object in a Kubernetes protobuf body, with its apiVersion and kind.

    Raises ProtobufError (a ValueError) with a clear reason on malformed input or an
    unknown apiVersion/kind."""
    if not data.startswith(MAGIC):
        raise ProtobufError("not a Kubernetes protobuf object: missing the k8s\\x00 prefix")
    api_version = kind = ""
    raw = b""
    for number, wire, value in _fields(data[len(MAGIC):]):
        if number == 1:
            for sub, sub_wire, sub_value in _fields(_length(value, wire, "typeMeta")):
                if sub == 1:
                    api_version = _text(_length(sub_value, sub_wire, "apiVersion"), "apiVersion")
                elif sub == 2:
                    kind = _text(_length(sub_value, sub_wire, "kind"), "kind")
        elif number == 2:
            raw = _length(value, wire, "raw")
        elif number == 3 and _length(value, wire, "contentEncoding"):
            encoding = _text(_length(value, wire, "contentEncoding"), "contentEncoding")
            raise ProtobufError(f"unsupported contentEncoding {encoding!r}")
    message = KINDS.get((api_version, kind)) or ANY_VERSION_KINDS.get(kind)
    if message is None:
        raise ProtobufError(f"no protobuf decoding for apiVersion {api_version!r} kind {kind!r}")
    # Go's JSON encoder writes kind and apiVersion first; keep that order for readability.
    return {"kind": kind, "apiVersion": api_version, **_decode_message(raw, message, "")}


def _decode_message(buf: bytes, message: str, path: str) -> dict[str, Any]:
    table = MESSAGES[message]
    out: dict[str, Any] = {}
    for number, wire, value in _fields(buf):
        field = table.get(number)
        if field is None:
            # Like the Kubernetes API server: fields this version does not know are skipped.
            continue
        where = f"{path}.{field.json_name}" if path else field.json_name
        if field.kind == MAP:
            key, item = _decode_map_entry(_length(value, wire, where), field, where)
            out.setdefault(field.json_name, {})[key] = item
        elif field.repeated:
            out.setdefault(field.json_name, []).extend(_decode_repeated(field, wire, value, where))
        elif field.inline:
            # An embedded Go struct: its fields belong to this JSON object.
            out.update(_decode_value(field, wire, value, path))
        else:
            decoded = _decode_value(field, wire, value, where)
            if decoded is None or (_is_zero(decoded) and not field.keep_zero):
                out.pop(field.json_name, None)
            else:
                out[field.json_name] = decoded
    return out


def _decode_repeated(field: Field, wire: int, value: int | bytes, where: str) -> list[Any]:
    if field.kind in _VARINT_KINDS and wire == LENGTH:
        # A packed list (not what Go's encoder writes for proto2, but legal protobuf).
        assert isinstance(value, bytes)
        items, pos = [], 0
        while pos < len(value):
            item, pos = _read_varint(value, pos)
            items.append(_decode_value(field, VARINT, item, where))
        return items
    return [_decode_value(field, wire, value, where)]


def _decode_map_entry(buf: bytes, field: Field, where: str) -> tuple[str, Any]:
    key, item = "", None
    for number, wire, value in _fields(buf):
        if number == 1:
            key = _text(_length(value, wire, where), where)
        elif number == 2:
            raw = _length(value, wire, f"{where}[{key}]")
            if field.message_type == BYTES:
                item = base64.b64encode(raw).decode("ascii")
            else:
                item = _text(raw, where) if field.message_type == STR else _decode_quantity(raw, where)
    if item is None:  # an absent value is the zero value of its type
        item = "" if field.message_type in (STR, BYTES) else "0"
    return key, item


def _decode_value(field: Field, wire: int, value: int | bytes, where: str) -> Any:
    """The JSON value of one occurrence of a field; None when Go's JSON would write null."""
    if field.kind in _VARINT_KINDS:
        if not isinstance(value, int):
            raise ProtobufError(f"{where}: expected a varint, got wire type {wire}")
        return bool(value) if field.kind == BOOL else _signed(value)
    raw = _length(value, wire, where)
    if field.kind == STR:
        return _text(raw, where)
    if field.kind == BYTES:
        return base64.b64encode(raw).decode("ascii")  # JSON carries []byte as base64
    if field.kind == MESSAGE:
        assert field.message_type is not None
        return _decode_message(raw, field.message_type, where)
    if field.kind in (TIME, MICROTIME):
        return _decode_time(raw, micro=field.kind == MICROTIME, where=where)
    if field.kind == QUANTITY:
        return _decode_quantity(raw, where)
    if field.kind == INT_OR_STRING:
        return _decode_int_or_string(raw, where)
    if field.kind == RAW_JSON:
        return _decode_raw_json(raw, where)
    raise AssertionError(f"unknown field kind {field.kind}")


def _decode_time(buf: bytes, micro: bool, where: str) -> str | None:
    # Go writes the zero Time (ObjectMeta.creationTimestamp of every new object) as an
    # empty message; its JSON form is null.
    if not buf:
        return None
    seconds = nanos = 0
    for number, wire, value in _fields(buf):
        if number in (1, 2):
            if not isinstance(value, int):
                raise ProtobufError(f"{where}: expected a varint, got wire type {wire}")
            if number == 1:
                seconds = _signed(value)
            else:
                nanos = _signed(value)
    try:
        moment = _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
    except OverflowError as err:
        raise ProtobufError(f"{where}: time out of range ({seconds} seconds)") from err
    # metav1.Time marshals to RFC 3339 in seconds, MicroTime with six fraction digits.
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def _decode_quantity(buf: bytes, where: str) -> str:
    text = "0"  # Go's zero Quantity, which the encoder would write as "0" anyway
    for number, wire, value in _fields(buf):
        if number == 1:
            text = _text(_length(value, wire, where), where)
    return text


def _decode_int_or_string(buf: bytes, where: str) -> int | str:
    kind, int_val, str_val = 0, 0, ""
    for number, wire, value in _fields(buf):
        if number in (1, 2):
            if not isinstance(value, int):
                raise ProtobufError(f"{where}: expected a varint, got wire type {wire}")
            if number == 1:
                kind = value
            else:
                int_val = _signed(value)
        elif number == 3:
            str_val = _text(_length(value, wire, where), where)
    return str_val if kind == 1 else int_val


def _decode_raw_json(buf: bytes, where: str) -> Any:
    raw = b""
    for number, wire, value in _fields(buf):
        if number == 1:
            raw = _length(value, wire, where)
    try:
        return json.loads(raw) if raw else None
    except ValueError as err:
        raise ProtobufError(f"{where}: not JSON: {err}") from err


def _length(value: int | bytes, wire: int, where: str) -> bytes:
    if wire != LENGTH or not isinstance(value, bytes):
        raise ProtobufError(f"{where}: expected a length-delimited field, got wire type {wire}")
    return value


def _text(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ProtobufError(f"{where}: string is not UTF-8") from err


def _is_zero(value: Any) -> bool:
    return value == "" or value is False or (type(value) is int and value == 0)


# --- encoding ----------------------------------------------------------------------------


def encode_k8s_protobuf(obj: dict[str, Any]) -> bytes:
    """The Kubernetes protobuf body of a JSON-shaped object that has apiVersion and kind.

    Fields are written in field-number order, maps sorted by key, as Go's encoder does.
    Raises ProtobufError for an unknown kind or a field the tables do not know."""
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    message = KINDS.get((api_version, kind)) or ANY_VERSION_KINDS.get(kind)
    if message is None:
        raise ProtobufError(f"no protobuf encoding for apiVersion {api_version!r} kind {kind!r}")
    body = {key: value for key, value in obj.items() if key not in ("apiVersion", "kind")}
    type_meta = _len_field(1, api_version.encode()) + _len_field(2, kind.encode())
    unknown = (_len_field(1, type_meta) + _len_field(2, _encode_message(body, message, ""))
               + _len_field(3, b"") + _len_field(4, b""))
    return MAGIC + unknown


def _encode_message(obj: dict[str, Any], message: str, path: str) -> bytes:
    table = MESSAGES[message]
    by_name = {field.json_name: (number, field) for number, field in table.items() if not field.inline}
    # The JSON keys of embedded structs go back into their own nested message.
    embedded: dict[int, dict[str, Any]] = {}
    for number, field in table.items():
        if field.inline:
            assert field.message_type is not None
            owned = _json_keys(field.message_type)
            embedded[number] = {key: value for key, value in obj.items() if key in owned}
    claimed = {key for part in embedded.values() for key in part}
    unknown = sorted(set(obj) - set(by_name) - claimed)
    if unknown:
        raise ProtobufError(f"{path or message}: no protobuf field for {', '.join(unknown)}")
    entries = [(number, table[number], part, path) for number, part in embedded.items()]
    entries += [(by_name[key][0], by_name[key][1], value, f"{path}.{key}" if path else key)
                for key, value in obj.items() if key in by_name]
    out = bytearray()
    for number, field, value, where in sorted(entries, key=lambda entry: entry[0]):
        if value is None:
            continue
        if field.kind == MAP:
            for key in sorted(value):
                entry = _len_field(1, key.encode()) + _len_field(2, _encode_map_value(value[key], field))
                out += _len_field(number, entry)
        elif field.repeated:
            for item in value:
                out += _encode_value(number, field, item, where)
        else:
            out += _encode_value(number, field, value, where)
    return bytes(out)


def _json_keys(message: str) -> set[str]:
    """The keys a message contributes to its JSON object, embedded structs included."""
    keys: set[str] = set()
    for field in MESSAGES[message].values():
        if field.inline and field.message_type is not None:
            keys |= _json_keys(field.message_type)
        else:
            keys.add(field.json_name)
    return keys


def _encode_map_value(value: Any, field: Field) -> bytes:
    if field.message_type == BYTES:
        return base64.b64decode(value)
    return str(value).encode() if field.message_type == STR else _len_field(1, str(value).encode())


def _encode_value(number: int, field: Field, value: Any, where: str) -> bytes:
    if field.kind in _VARINT_KINDS:
        return _varint((number << 3) | VARINT) + _varint(int(value))
    if field.kind == STR:
        payload = str(value).encode()
    elif field.kind == BYTES:
        payload = base64.b64decode(value)
    elif field.kind == MESSAGE:
        assert field.message_type is not None
        payload = _encode_message(value, field.message_type, where)
    elif field.kind in (TIME, MICROTIME):
        payload = _encode_time(value, where)
    elif field.kind == QUANTITY:
        payload = _len_field(1, str(value).encode())
    elif field.kind == INT_OR_STRING:
        if isinstance(value, str):
            payload = _varint(1 << 3) + _varint(1) + _len_field(3, value.encode())
        else:
            payload = _varint(1 << 3) + _varint(0) + _varint(2 << 3) + _varint(int(value))
    elif field.kind == RAW_JSON:
        payload = _len_field(1, json.dumps(value, separators=(",", ":")).encode())
    else:
        raise AssertionError(f"unknown field kind {field.kind}")
    return _len_field(number, payload)


def _encode_time(value: str, where: str) -> bytes:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as err:
        raise ProtobufError(f"{where}: not an RFC 3339 time: {value!r}") from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    return _varint(1 << 3) + _varint(seconds) + _varint(2 << 3) + _varint(delta.microseconds * 1000)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint((number << 3) | LENGTH) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers: their two's complement, 10 bytes
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
