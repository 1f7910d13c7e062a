"""The OpenAPI documents kubectl and other clients fetch (/openapi/v2, /openapi/v3).

Generated from sigma.api.schema, so the document, pruning and strategic-merge keys agree.
Each kind carries x-kubernetes-group-version-kind, and merge lists carry
x-kubernetes-patch-merge-key / x-kubernetes-patch-strategy as Kubernetes publishes them.

The v3 document of each group-version describes every path the server routes for it: the
collection (list, watch, create, deletecollection), the item (get, replace, patch in the four
patch content types, delete with DeleteOptions), the subresources (status, scale, binding,
eviction, log), their query parameters, and the responses: the kind, its List, or a
metav1.Status for each error the API returns. Schemathesis checks the server against it
(tests/api/test_schemathesis.py).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

import sigma
from sigma.api.resources import RESOURCES, ResourceType
from sigma.api.schema import KIND_SCHEMAS, Schema

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
STATUS = f"{META}.Status"
LIST_META = f"{META}.ListMeta"
DELETE_OPTIONS = f"{META}.DeleteOptions"
SCALE = "io.k8s.api.autoscaling.v1.Scale"
BINDING = "io.k8s.api.core.v1.Binding"
EVICTION = "io.k8s.api.policy.v1.Eviction"
TOKEN_REQUEST = "io.k8s.api.authentication.v1.TokenRequest"
# The errors any request may get, each as a metav1.Status. 405: an empty {name} makes an item
# path the collection's, where PUT and PATCH are not served. 504: a list at a resourceVersion
# the store has not reached.
ERROR_CODES: dict[str, str] = {
    "400": "BadRequest", "401": "Unauthorized", "403": "Forbidden", "404": "NotFound",
    "405": "MethodNotAllowed", "409": "Conflict",
    "410": "Gone", "413": "RequestEntityTooLarge", "415": "UnsupportedMediaType", "422": "Invalid",
    "429": "TooManyRequests", "504": "Timeout",
}
PATCH_MEDIA_TYPES = ("application/merge-patch+json", "application/json-patch+json",
                     "application/strategic-merge-patch+json", "application/apply-patch+yaml")


def _definition_name(rt: ResourceType) -> str:
    group = rt.group or "core"
    return f"io.sigma.{group}.{rt.version}.{rt.kind}"


def to_openapi(schema: Schema, v3: bool) -> dict[str, Any]:
    out = _shape(schema, v3)
    if schema.description:
        out["description"] = schema.description
    return out


def _shape(schema: Schema, v3: bool) -> dict[str, Any]:
    if schema.type == "free":
        # Any JSON value: an object, a list (podIPs, envFrom) or a scalar.
        if v3:
            return {"x-kubernetes-preserve-unknown-fields": True}
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if schema.type == "intorstring":
        # As Kubernetes publishes intstr.IntOrString (maxSurge: 1 or "25%", a probe's port).
        return {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]} if v3 \
            else {"type": "string", "format": "int-or-string"}
    if schema.type == "quantity":
        if v3:
            # As Kubernetes publishes resource.Quantity in v3: "500m", "1Gi" or a JSON number (2, 0.5).
            return {"anyOf": [{"type": "string"}, {"type": "number"}]}
        return {"type": "string", "format": "quantity"}
    if schema.type == "array":
        out: dict[str, Any] = {"type": "array"}
        if schema.items is not None:
            out["items"] = to_openapi(schema.items, v3)
        if schema.merge_key:
            out["x-kubernetes-patch-merge-key"] = schema.merge_key
            out["x-kubernetes-patch-strategy"] = "merge"
        if schema.max_items is not None:
            out["maxItems"] = schema.max_items
        return out
    if schema.type == "object":
        out = {"type": "object"}
        if schema.values is not None:
            out["additionalProperties"] = to_openapi(schema.values, v3)
        if schema.properties:
            out["properties"] = {k: to_openapi(v, v3) for k, v in schema.properties.items()}
        return out
    out = {"type": schema.type}
    if schema.format:
        out["format"] = schema.format
    if schema.minimum is not None:
        out["minimum"] = schema.minimum
    if schema.maximum is not None:
        out["maximum"] = schema.maximum
    if schema.max_length is not None:
        out["maxLength"] = schema.max_length
    if schema.enum:
        out["enum"] = list(schema.enum)
    return out


def _definitions(resources: list[ResourceType], v3: bool) -> dict[str, Any]:
    defs = {}
    for rt in resources:
        doc = to_openapi(KIND_SCHEMAS[rt.kind], v3)
        doc["x-kubernetes-group-version-kind"] = [{"group": rt.group, "version": rt.version, "kind": rt.kind}]
        defs[_definition_name(rt)] = doc
    return defs


@cache
def openapi_v2() -> dict[str, Any]:
    return {"swagger": "2.0", "info": {"title": "Sigma", "version": sigma.__version__}, "paths": {},
            "definitions": _definitions(list(RESOURCES), v3=False)}


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


# -- v3: shared schemas ---------------------------------------------------------------------
def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}


def _meta_schemas() -> dict[str, Any]:
    """metav1 Status, ListMeta and DeleteOptions, and the bodies of the subresources."""
    object_meta = to_openapi(KIND_SCHEMAS["Pod"].properties["metadata"], v3=True)
    return {
        STATUS: {
            "type": "object", "description": "The result of a request that does not return an object: every error.",
            "properties": {
                "apiVersion": _STR, "kind": _STR, "metadata": _ref(LIST_META), "status": _STR, "message": _STR,
                "reason": _STR, "code": _INT,
                "details": {"type": "object", "properties": {
                    "name": _STR, "group": _STR, "kind": _STR, "uid": _STR, "retryAfterSeconds": _INT,
                    "causes": {"type": "array", "items": {"type": "object", "properties": {
                        "reason": _STR, "message": _STR, "field": _STR}}}}},
            },
        },
        LIST_META: {"type": "object", "properties": {"resourceVersion": _STR, "continue": _STR,
                                                     "remainingItemCount": _INT, "selfLink": _STR}},
        DELETE_OPTIONS: {
            "type": "object",
            "properties": {
                "apiVersion": _STR, "kind": _STR, "gracePeriodSeconds": _INT, "propagationPolicy": _STR,
                "orphanDependents": _BOOL, "dryRun": {"type": "array", "items": _STR},
                "preconditions": {"type": "object", "properties": {"uid": _STR, "resourceVersion": _STR}},
            },
        },
        SCALE: {
            "type": "object",
            "x-kubernetes-group-version-kind": [{"group": "autoscaling", "version": "v1", "kind": "Scale"}],
            "properties": {
                "apiVersion": _STR, "kind": _STR, "metadata": object_meta,
                "spec": {"type": "object", "properties": {"replicas": _INT}},
                "status": {"type": "object", "properties": {"replicas": _INT, "selector": _STR}},
            },
        },
        BINDING: {
            "type": "object",
            "properties": {
                "apiVersion": _STR, "kind": _STR, "metadata": object_meta,
                "target": {"type": "object", "properties": {"apiVersion": _STR, "kind": _STR, "name": _STR,
                                                            "namespace": _STR, "uid": _STR}},
            },
        },
        EVICTION: {
            "type": "object",
            "properties": {"apiVersion": _STR, "kind": _STR, "metadata": object_meta,
                           "deleteOptions": _ref(DELETE_OPTIONS)},
        },
        TOKEN_REQUEST: {
            "type": "object",
            "x-kubernetes-group-version-kind": [{"group": "authentication.k8s.io", "version": "v1",
                                                 "kind": "TokenRequest"}],
            "properties": {
                "apiVersion": _STR, "kind": _STR, "metadata": object_meta,
                "spec": {"type": "object", "properties": {
                    "audiences": {"type": "array", "items": _STR}, "expirationSeconds": _INT,
                    "boundObjectRef": {"type": "object", "properties": {"apiVersion": _STR, "kind": _STR,
                                                                        "name": _STR, "uid": _STR}}}},
                "status": {"type": "object", "properties": {"token": _STR, "expirationTimestamp": _STR}},
            },
        },
    }


def _list_schema(rt: ResourceType) -> dict[str, Any]:
    return {
        "type": "object",
        "x-kubernetes-group-version-kind": [{"group": rt.group, "version": rt.version, "kind": f"{rt.kind}List"}],
        "required": ["items"],
        "properties": {"apiVersion": _STR, "kind": _STR, "metadata": _ref(LIST_META),
                       "items": {"type": "array", "items": _ref(_definition_name(rt))}},
    }


# -- v3: parameters, bodies, responses --------------------------------------------------------
def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


_Q = {
    "pretty": _query("pretty", _STR, "Accepted for compatibility; responses are compact JSON."),
    "dryRun": _query("dryRun", _STR, "When present (All), the request is validated but nothing is written."),
    "fieldValidation": _query("fieldValidation", _STR,
                              "Strict (the default) rejects unknown fields with 422; Ignore and Warn drop them."),
    "fieldManager": _query("fieldManager", _STR, "Accepted for compatibility; ownership is not tracked."),
    "force": _query("force", _BOOL, "Accepted for compatibility with server-side apply."),
    "labelSelector": _query("labelSelector", _STR, "Only objects whose labels match."),
    "fieldSelector": _query("fieldSelector", _STR, "Only objects whose fields match (see README)."),
    "limit": _query("limit", {"type": "integer", "minimum": 0}, "At most this many items; 0 for all."),
    "continue": _query("continue", _STR, "The continue token of the previous page."),
    "watch": _query("watch", _BOOL, "Stream ADDED/MODIFIED/DELETED events instead of a list."),
    "allowWatchBookmarks": _query("allowWatchBookmarks", _BOOL, "Send BOOKMARK events on a watch."),
    "resourceVersion": _query("resourceVersion", _STR, "Watch from this resourceVersion."),
    "timeoutSeconds": _query("timeoutSeconds", {"type": "integer", "minimum": 0},
                             "End the watch after this many seconds."),
    "gracePeriodSeconds": _query("gracePeriodSeconds", {"type": "integer", "minimum": 0},
                                 "Seconds before the object is deleted; 0 deletes at once."),
    "propagationPolicy": _query("propagationPolicy", {"type": "string",
                                                      "enum": ["Orphan", "Background", "Foreground"]},
                                "Whether and how dependents are deleted."),
    "container": _query("container", _STR, "The container to read the log of."),
    "follow": _query("follow", _BOOL, "Stream the log."),
    "previous": _query("previous", _BOOL, "The log of the previous run of the container."),
    "timestamps": _query("timestamps", _BOOL, "Prefix each line with its time."),
    "tailLines": _query("tailLines", {"type": "integer", "minimum": 0}, "Only the last lines."),
    "sinceSeconds": _query("sinceSeconds", {"type": "integer", "minimum": 1}, "Only recent lines."),
    "limitBytes": _query("limitBytes", {"type": "integer", "minimum": 1}, "At most this many bytes."),
    # pods/exec, attach, portforward (WebSocket: v5/v4.channel.k8s.io, SPDY/3.1+portforward.k8s.io)
    "command": _query("command", _STR, "One word of the command to run (repeated, in order)."),
    "stdin": _query("stdin", _BOOL, "Pass the client's stdin to the command."),
    "stdout": _query("stdout", _BOOL, "Return the command's stdout."),
    "stderr": _query("stderr", _BOOL, "Return the command's stderr."),
    "tty": _query("tty", _BOOL, "Run the command on a terminal."),
    "ports": _query("ports", {"type": "integer", "minimum": 1, "maximum": 65535}, "A port to forward (repeated)."),
}
_WRITE = ("dryRun", "fieldValidation", "fieldManager", "pretty")
_LIST = ("labelSelector", "fieldSelector", "limit", "continue", "watch", "allowWatchBookmarks", "resourceVersion",
         "timeoutSeconds", "pretty")
_DELETE = ("gracePeriodSeconds", "propagationPolicy", "dryRun", "pretty")


def _path_param(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": what}


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema},
                                              "application/yaml": {"schema": schema}}}


def _patch_body() -> dict[str, Any]:
    obj = {"type": "object", "description": "A partial object, merged into the current one."}
    ops = {"type": "array", "items": {"type": "object", "required": ["op", "path"], "properties": {
        "op": {"type": "string", "enum": ["add", "remove", "replace", "move", "copy", "test"]},
        "path": _STR, "from": _STR, "value": {}}}}
    content = {media: {"schema": ops if media == "application/json-patch+json" else obj}
               for media in PATCH_MEDIA_TYPES}
    return {"required": True, "content": content}


def _responses(ok: dict[str, Any], *, codes: tuple[str, ...] = ("200",), media: str = "application/json") -> dict[
        str, Any]:
    out: dict[str, Any] = {code: {"description": "Created" if code == "201" else "OK",
                                  "content": {media: {"schema": ok}}} for code in codes}
    for code, reason in ERROR_CODES.items():
        out[code] = {"description": reason, "content": {"application/json": {"schema": _ref(STATUS)}}}
    return out


def _op(rt: ResourceType, action: str, op_id: str, params: tuple[str, ...], responses: dict[str, Any],
        body: dict[str, Any] | None = None, kind: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op_id, "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": kind or rt.kind},
        "parameters": [_Q[p] for p in params], "responses": responses,
    }
    if body is not None:
        out["requestBody"] = body
    return out


def _camel(rt: ResourceType) -> str:
    group = "".join(part.capitalize() for part in (rt.group or "core").split(".")[:1])
    return f"{group}{rt.version.capitalize()}"


def _paths(rt: ResourceType) -> dict[str, Any]:
    base = f"/{_gv_path(rt.group, rt.version)}"
    scope = f"{base}/namespaces/{{namespace}}" if rt.namespaced else base
    ns = "Namespaced" if rt.namespaced else ""
    tag = f"{_camel(rt)}{ns}{rt.kind}"
    scope_params = [_path_param("namespace", "The namespace of the objects.")] if rt.namespaced else []
    item_params = [_path_param("name", f"The name of the {rt.kind}."), *scope_params]
    kind = _ref(_definition_name(rt))
    listed = _ref(f"{_definition_name(rt)}List")
    paths: dict[str, Any] = {
        f"{scope}/{rt.plural}": {
            "parameters": scope_params,
            "get": _op(rt, "list", f"list{tag}", _LIST, _responses(listed)),
            "post": _op(rt, "post", f"create{tag}", _WRITE, _responses(kind, codes=("201",)), _body(kind)),
            "delete": _op(rt, "deletecollection", f"deleteCollection{tag}", ("labelSelector", "fieldSelector",
                          *_DELETE), _responses(listed)),
        },
        f"{scope}/{rt.plural}/{{name}}": {
            "parameters": item_params,
            "get": _op(rt, "get", f"read{tag}", ("pretty",), _responses(kind)),
            "put": _op(rt, "put", f"replace{tag}", _WRITE, _responses(kind), _body(kind)),
            "patch": _op(rt, "patch", f"patch{tag}", (*_WRITE, "force"), _responses(kind), _patch_body()),
            "delete": _op(rt, "delete", f"delete{tag}", _DELETE, _responses(kind),
                          _body(_ref(DELETE_OPTIONS), required=False)),
        },
    }
    if rt.namespaced:
        paths[f"{base}/{rt.plural}"] = {"get": _op(rt, "list", f"list{_camel(rt)}{rt.kind}ForAllNamespaces", _LIST,
                                                   _responses(listed))}
    item = f"{scope}/{rt.plural}/{{name}}"
    for sub in rt.subresources:
        sub_tag = f"{tag}{sub.capitalize()}"
        if sub == "status":
            paths[f"{item}/status"] = {
                "parameters": item_params,
                "get": _op(rt, "get", f"read{sub_tag}", ("pretty",), _responses(kind)),
                "put": _op(rt, "put", f"replace{sub_tag}", _WRITE, _responses(kind), _body(kind)),
                "patch": _op(rt, "patch", f"patch{sub_tag}", (*_WRITE, "force"), _responses(kind), _patch_body()),
            }
        elif sub == "scale":
            scale = _ref(SCALE)
            paths[f"{item}/scale"] = {
                "parameters": item_params,
                "get": _op(rt, "get", f"read{sub_tag}", ("pretty",), _responses(scale), kind="Scale"),
                "put": _op(rt, "put", f"replace{sub_tag}", _WRITE, _responses(scale), _body(scale), kind="Scale"),
                "patch": _op(rt, "patch", f"patch{sub_tag}", (*_WRITE, "force"), _responses(scale),
                             _patch_body(), kind="Scale"),
            }
        elif sub in ("binding", "eviction"):
            schema = _ref(BINDING if sub == "binding" else EVICTION)
            paths[f"{item}/{sub}"] = {
                "parameters": item_params,
                "post": _op(rt, "post", f"create{sub_tag}", _WRITE, _responses(_ref(STATUS), codes=("201",)),
                            _body(schema), kind=sub.capitalize()),
            }
        elif sub == "token":
            token = _ref(TOKEN_REQUEST)
            paths[f"{item}/token"] = {
                "parameters": item_params,
                "post": _op(rt, "post", f"create{sub_tag}", _WRITE, _responses(token, codes=("201",)),
                            _body(token), kind="TokenRequest"),
            }
        elif sub in ("exec", "attach", "portforward"):
            params = {"exec": ("command", "container", "stdin", "stdout", "stderr", "tty"),
                      "attach": ("container", "stdin", "stdout", "stderr", "tty"), "portforward": ("ports",)}[sub]
            options = {"exec": "PodExecOptions", "attach": "PodAttachOptions",
                       "portforward": "PodPortForwardOptions"}[sub]
            paths[f"{item}/{sub}"] = {  # operation ids as Kubernetes': connectCoreV1GetNamespacedPodExec
                "parameters": item_params,
                **{verb.lower(): _op(rt, "connect", f"connect{_camel(rt)}{verb}{ns}{rt.kind}{sub.capitalize()}",
                                     params, _responses(_STR), kind=options) for verb in ("Get", "Post")},
            }
        elif sub == "log":
            paths[f"{item}/log"] = {
                "parameters": item_params,
                "get": _op(rt, "get", f"read{sub_tag}", ("container", "follow", "previous", "timestamps",
                                                         "tailLines", "sinceSeconds", "limitBytes", "pretty"),
                           _responses(_STR, media="text/plain")),
            }
    return paths


@cache
def openapi_v3_group(path: str) -> dict[str, Any] | None:
    resources = [rt for rt in RESOURCES if _gv_path(rt.group, rt.version) == path]
    if not resources:
        return None
    paths: dict[str, Any] = {}
    schemas = _definitions(resources, v3=True)
    for rt in resources:
        paths.update(_paths(rt))
        schemas[f"{_definition_name(rt)}List"] = _list_schema(rt)
    schemas.update(_meta_schemas())
    return {"openapi": "3.0.0", "info": {"title": "Sigma", "version": sigma.__version__},
            "paths": paths, "components": {"schemas": schemas}}


@cache
def openapi_v3_index() -> dict[str, Any]:
    paths = {}
    for rt in RESOURCES:
        path = _gv_path(rt.group, rt.version)
        if path in paths:
            continue
        digest = hashlib.sha256(json.dumps(openapi_v3_group(path), sort_keys=True).encode()).hexdigest()[:16].upper()
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}
