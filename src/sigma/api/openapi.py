"""The OpenAPI documents kubectl and other clients fetch (/openapi/v2, /openapi/v3).

Generated from sigma.api.schema, so the document, pruning and strategic-merge keys agree.
Each kind carries x-kubernetes-group-version-kind, and merge lists carry
x-kubernetes-patch-merge-key / x-kubernetes-patch-strategy as Kubernetes publishes them.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

import sigma
from sigma.api.resources import RESOURCES, ResourceType
from sigma.api.schema import KIND_SCHEMAS, Schema


def _definition_name(rt: ResourceType) -> str:
    group = rt.group or "core"
    return f"io.sigma.{group}.{rt.version}.{rt.kind}"


def to_openapi(schema: Schema, v3: bool) -> dict[str, Any]:
    if schema.type == "free":
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if schema.type == "quantity":
        if v3:
            return {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
        return {"type": "string", "format": "quantity"}
    if schema.type == "array":
        out: dict[str, Any] = {"type": "array"}
        if schema.items is not None:
            out["items"] = to_openapi(schema.items, v3)
        if schema.merge_key:
            out["x-kubernetes-patch-merge-key"] = schema.merge_key
            out["x-kubernetes-patch-strategy"] = "merge"
        return out
    if schema.type == "object":
        out = {"type": "object"}
        if schema.description:
            out["description"] = schema.description
        if schema.values is not None:
            out["additionalProperties"] = to_openapi(schema.values, v3)
        if schema.properties:
            out["properties"] = {k: to_openapi(v, v3) for k, v in schema.properties.items()}
        return out
    return {"type": schema.type}


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


_QUERY_PARAMS = ("fieldValidation", "dryRun", "fieldManager", "force", "pretty")


def _paths(resources: list[ResourceType]) -> dict[str, Any]:
    """One item path per resource with its operations. kubectl looks for the PATCH
    operation of a kind and its fieldValidation parameter to decide whether the server
    validates fields itself (it does: unknown fields are rejected)."""
    paths: dict[str, Any] = {}
    for rt in resources:
        base = f"/{_gv_path(rt.group, rt.version)}"
        scope = f"{base}/namespaces/{{namespace}}" if rt.namespaced else base
        item = f"{scope}/{rt.plural}/{{name}}"
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        ref = {"$ref": f"#/components/schemas/{_definition_name(rt)}"}
        ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}

        def op(action: str, params: tuple[str, ...] = (), gvk: dict[str, str] = gvk,
               ok: dict[str, Any] = ok) -> dict[str, Any]:
            return {"x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk, "responses": ok,
                    "parameters": [{"name": p, "in": "query", "schema": {"type": "string"}} for p in params]}

        paths[item] = {"get": op("get"), "put": op("put", _QUERY_PARAMS), "patch": op("patch", _QUERY_PARAMS),
                       "delete": op("delete", ("gracePeriodSeconds", "propagationPolicy", "dryRun"))}
    return paths


@cache
def openapi_v3_group(path: str) -> dict[str, Any] | None:
    resources = [rt for rt in RESOURCES if _gv_path(rt.group, rt.version) == path]
    if not resources:
        return None
    return {"openapi": "3.0.0", "info": {"title": "Sigma", "version": sigma.__version__},
            "paths": _paths(resources), "components": {"schemas": _definitions(resources, v3=True)}}


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
