"""etcd's v3 messages that Sigma sends and reads, as protobuf classes built at import time.

The field numbers and types are etcd's (api/etcdserverpb/rpc.proto, api/mvccpb/kv.proto).
etcd only sees the wire format, so the messages are described here in a few lines instead of
being compiled from etcd's .proto files: there is no generated code to keep in step with the
protobuf runtime, and the classes are still protobuf's own (upb, in C), which is what makes
them cheap to build and parse on every store call.

Only the fields Sigma uses are declared; a field etcd sends that is not declared here is kept
as an unknown field and ignored.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {"bytes": _F.TYPE_BYTES, "int64": _F.TYPE_INT64, "uint64": _F.TYPE_UINT64,
            "bool": _F.TYPE_BOOL, "string": _F.TYPE_STRING}

# Enum values are numbered in order. Compare's nested enums are declared at the top level
# (the wire format carries numbers only).
_ENUMS: dict[str, list[str]] = {
    "CompareResult": ["EQUAL", "GREATER", "LESS", "NOT_EQUAL"],
    "CompareTarget": ["VERSION", "CREATE", "MOD", "VALUE", "LEASE"],
    "EventType": ["PUT", "DELETE"],
}

# message -> fields as (name, number, type[, flag]); flag "*" is repeated, "|" is a member of
# the message's one oneof (etcd's request/response unions and Compare's target_union).
_Field = tuple[str, int, str] | tuple[str, int, str, str]
_MESSAGES: dict[str, list[_Field]] = {
    "ResponseHeader": [("cluster_id", 1, "uint64"), ("member_id", 2, "uint64"), ("revision", 3, "int64"),
                       ("raft_term", 4, "uint64")],
    "KeyValue": [("key", 1, "bytes"), ("create_revision", 2, "int64"), ("mod_revision", 3, "int64"),
                 ("version", 4, "int64"), ("value", 5, "bytes"), ("lease", 6, "int64")],
    "Event": [("type", 1, "EventType"), ("kv", 2, "KeyValue"), ("prev_kv", 3, "KeyValue")],
    "RangeRequest": [("key", 1, "bytes"), ("range_end", 2, "bytes"), ("limit", 3, "int64"),
                     ("revision", 4, "int64"), ("serializable", 7, "bool"), ("keys_only", 8, "bool"),
                     ("count_only", 9, "bool")],
    "RangeResponse": [("header", 1, "ResponseHeader"), ("kvs", 2, "KeyValue", "*"), ("more", 3, "bool"),
                      ("count", 4, "int64")],
    "PutRequest": [("key", 1, "bytes"), ("value", 2, "bytes"), ("lease", 3, "int64"), ("prev_kv", 4, "bool")],
    "PutResponse": [("header", 1, "ResponseHeader"), ("prev_kv", 2, "KeyValue")],
    "DeleteRangeRequest": [("key", 1, "bytes"), ("range_end", 2, "bytes"), ("prev_kv", 3, "bool")],
    "DeleteRangeResponse": [("header", 1, "ResponseHeader"), ("deleted", 2, "int64"),
                            ("prev_kvs", 3, "KeyValue", "*")],
    "RequestOp": [("request_range", 1, "RangeRequest", "|"), ("request_put", 2, "PutRequest", "|"),
                  ("request_delete_range", 3, "DeleteRangeRequest", "|")],
    "ResponseOp": [("response_range", 1, "RangeResponse", "|"), ("response_put", 2, "PutResponse", "|"),
                   ("response_delete_range", 3, "DeleteRangeResponse", "|")],
    "Compare": [("result", 1, "CompareResult"), ("target", 2, "CompareTarget"), ("key", 3, "bytes"),
                ("version", 4, "int64", "|"), ("create_revision", 5, "int64", "|"),
                ("mod_revision", 6, "int64", "|"), ("value", 7, "bytes", "|"), ("lease", 8, "int64", "|"),
                ("range_end", 64, "bytes")],
    "TxnRequest": [("compare", 1, "Compare", "*"), ("success", 2, "RequestOp", "*"),
                   ("failure", 3, "RequestOp", "*")],
    "TxnResponse": [("header", 1, "ResponseHeader"), ("succeeded", 2, "bool"),
                    ("responses", 3, "ResponseOp", "*")],
    "CompactionRequest": [("revision", 1, "int64"), ("physical", 2, "bool")],
    "CompactionResponse": [("header", 1, "ResponseHeader")],
    "LeaseGrantRequest": [("TTL", 1, "int64"), ("ID", 2, "int64")],
    "LeaseGrantResponse": [("header", 1, "ResponseHeader"), ("ID", 2, "int64"), ("TTL", 3, "int64"),
                           ("error", 4, "string")],
    "LeaseRevokeRequest": [("ID", 1, "int64")],
    "LeaseRevokeResponse": [("header", 1, "ResponseHeader")],
    "LeaseKeepAliveRequest": [("ID", 1, "int64")],
    "LeaseKeepAliveResponse": [("header", 1, "ResponseHeader"), ("ID", 2, "int64"), ("TTL", 3, "int64")],
    "WatchCreateRequest": [("key", 1, "bytes"), ("range_end", 2, "bytes"), ("start_revision", 3, "int64"),
                           ("progress_notify", 4, "bool"), ("prev_kv", 6, "bool")],
    "WatchRequest": [("create_request", 1, "WatchCreateRequest", "|")],
    "WatchResponse": [("header", 1, "ResponseHeader"), ("watch_id", 2, "int64"), ("created", 3, "bool"),
                      ("canceled", 4, "bool"), ("compact_revision", 5, "int64"), ("cancel_reason", 6, "string"),
                      ("fragment", 7, "bool"), ("events", 11, "Event", "*")],
}


def _file() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(name="sigma/etcd.proto", package="etcdserverpb", syntax="proto3")
    for name, values in _ENUMS.items():
        enum = fd.enum_type.add(name=name)
        for number, value in enumerate(values):
            # Enum value names share the package's scope: prefix them to keep them distinct.
            enum.value.add(name=f"{name}_{value}", number=number)
    for name, fields in _MESSAGES.items():
        message = fd.message_type.add(name=name)
        if any(spec[3:] == ("|",) for spec in fields):
            message.oneof_decl.add(name="union")
        for spec in fields:
            field = message.field.add(name=spec[0], number=spec[1])
            flag = spec[3] if len(spec) > 3 else ""
            field.label = _F.LABEL_REPEATED if flag == "*" else _F.LABEL_OPTIONAL
            kind = spec[2]
            if kind in _SCALARS:
                field.type = _SCALARS[kind]
            else:
                field.type = _F.TYPE_ENUM if kind in _ENUMS else _F.TYPE_MESSAGE
                field.type_name = f".etcdserverpb.{kind}"
            if flag == "|":
                field.oneof_index = 0
    return fd


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())


def _message(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"etcdserverpb.{name}"))


KeyValue: Any = _message("KeyValue")
RangeRequest: Any = _message("RangeRequest")
RangeResponse: Any = _message("RangeResponse")
PutRequest: Any = _message("PutRequest")
DeleteRangeRequest: Any = _message("DeleteRangeRequest")
TxnRequest: Any = _message("TxnRequest")
TxnResponse: Any = _message("TxnResponse")
CompactionRequest: Any = _message("CompactionRequest")
CompactionResponse: Any = _message("CompactionResponse")
LeaseGrantRequest: Any = _message("LeaseGrantRequest")
LeaseGrantResponse: Any = _message("LeaseGrantResponse")
LeaseRevokeRequest: Any = _message("LeaseRevokeRequest")
LeaseRevokeResponse: Any = _message("LeaseRevokeResponse")
LeaseKeepAliveRequest: Any = _message("LeaseKeepAliveRequest")
LeaseKeepAliveResponse: Any = _message("LeaseKeepAliveResponse")
WatchRequest: Any = _message("WatchRequest")
WatchResponse: Any = _message("WatchResponse")

# Compare.result / Compare.target / Event.type, by their numbers on the wire.
EQUAL, GREATER = 0, 1
VERSION, CREATE, MOD = 0, 1, 2
DELETE = 1
