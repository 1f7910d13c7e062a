"""The three PATCH formats of the Kubernetes API, as pure functions.

- JSON merge patch (RFC 7386): maps merge, null deletes, lists replace.
- JSON patch (RFC 6902): a list of add/remove/replace/move/copy/test operations.
- Strategic merge patch: like merge patch, but lists whose schema names a merge key
  (containers by name, env by name, conditions by type...) merge item by item, with the
  directives kubectl apply sends ($patch, $setElementOrder, $retainKeys,
  $deleteFromPrimitiveList). The merge keys come from sigma.api.schema.

Every function returns a new object and raises PatchError with a reason on bad input.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from sigma.api.schema import Schema


class PatchError(ValueError):
    pass


class PatchTestFailed(PatchError):
    """A JSON-patch `test` operation found another value (or nothing) at its path. The
    message names the path and both values, in the words of the JSON-patch library
    kube-apiserver uses ("testing value PATH failed"), so the caller can tell which of its
    tests failed."""

    def __init__(self, path: str, expected: Any, found: Any, missing: bool = False) -> None:
        self.path, self.expected, self.found = path, expected, found
        actual = "the path does not exist" if missing else f"found {_short(found)}"
        super().__init__(f"testing value {path} failed: expected {_short(expected)}, {actual}")


def _short(value: Any, limit: int = 200) -> str:
    """A value as JSON, cut short: a message must not echo a whole object back."""
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


# -- JSON patch -----------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}: must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    for part in parts:
        if isinstance(doc, dict):
            if part not in doc:
                raise PatchError(f"path {path!r} does not exist")
            doc = doc[part]
        elif isinstance(doc, list):
            doc = doc[_index(doc, part, path, allow_end=False)]
        else:
            raise PatchError(f"path {path!r} does not exist")
    return doc


def _index(lst: list[Any], part: str, path: str, allow_end: bool) -> int:
    if part == "-" and allow_end:
        return len(lst)
    if not part.isdigit():
        raise PatchError(f"invalid list index {part!r} in {path!r}")
    i = int(part)
    if i > len(lst) or (i == len(lst) and not allow_end):
        raise PatchError(f"list index {i} out of range in {path!r}")
    return i


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, allow_end=True), copy.deepcopy(value))
    else:
        raise PatchError(f"path {path!r} does not exist")
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    parts = _pointer(path)
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {path!r} does not exist")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, path, allow_end=False))
    raise PatchError(f"path {path!r} does not exist")


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for n, op in enumerate(operations):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"operation {n}: must be an object with 'op' and 'path'")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {n} ({kind} {path}): missing 'value'")
        if kind == "add":
            doc = _add(doc, path, op["value"])
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            doc, _ = _remove(doc, path)
            doc = _add(doc, path, op["value"])
        elif kind in ("move", "copy"):
            if "from" not in op:
                raise PatchError(f"operation {n} ({kind} {path}): missing 'from'")
            value = copy.deepcopy(_walk(doc, _pointer(op["from"]), op["from"]))
            if kind == "move":
                doc, _ = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "test":
            try:
                found = _walk(doc, _pointer(path), path)
            except PatchError:
                raise PatchTestFailed(path, op["value"], None, missing=True) from None
            if found != op["value"]:
                raise PatchTestFailed(path, op["value"], found)
        else:
            raise PatchError(f"operation {n}: unknown op {kind!r}")
    return doc


# -- strategic merge patch ------------------------------------------------------------

_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


def strategic_merge_patch(target: Any, patch: Any, schema: Schema | None) -> Any:
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    return _smp_map(target if isinstance(target, dict) else {}, patch, schema)


def _smp_map(target: dict[str, Any], patch: dict[str, Any], schema: Schema | None) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive is not None:
        raise PatchError(f"unknown $patch directive {directive!r}")
    out = dict(target)
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$retainKeys",) or key.startswith(_ORDER):
            continue
        if key.startswith(_DELETE_PRIMITIVE):
            field = key[len(_DELETE_PRIMITIVE):]
            if isinstance(out.get(field), list) and isinstance(value, list):
                out[field] = [v for v in out[field] if v not in value]
            continue
        sub = schema.child(key) if schema is not None else None
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            current = out.get(key)
            merged = _smp_map(current if isinstance(current, dict) else {}, value, sub)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        elif isinstance(value, list):
            out[key] = _smp_list(out.get(key), value, sub)
        else:
            out[key] = value
    for key, value in patch.items():
        if key.startswith(_ORDER) and isinstance(value, list):
            field = key[len(_ORDER):]
            sub = schema.child(field) if schema is not None else None
            if isinstance(out.get(field), list):
                out[field] = _order(out[field], value, sub.merge_key if sub else None)
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _smp_list(target: Any, patch: list[Any], schema: Schema | None) -> list[Any]:
    key = schema.merge_key if schema is not None else None
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    if key is None or not isinstance(target, list):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and p.get("$patch"))]
    if not all(isinstance(p, dict) for p in patch):
        # A merge list of primitives (finalizers): union, keeping order.
        return list(target) + [p for p in patch if p not in target]
    out = [copy.deepcopy(t) for t in target]
    item_schema = schema.items if schema is not None else None
    for item in patch:
        if key not in item:
            raise PatchError(f"a list item of the patch has no merge key {key!r}")
        pos = next((i for i, t in enumerate(out) if isinstance(t, dict) and t.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if pos is not None:
                out.pop(pos)
            continue
        if pos is None:
            out.append({k: v for k, v in item.items() if k != "$patch"})
        else:
            merged = _smp_map(dict(out[pos]), item, item_schema)
            if merged is not None:
                out[pos] = merged
    return out


def _order(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    """Put items in the order $setElementOrder gives; unlisted items keep their place after."""
    def ident(item: Any) -> Any:
        return item.get(key) if key and isinstance(item, dict) else item

    wanted = [o.get(key) if key and isinstance(o, dict) else o for o in order]
    rank = {w: i for i, w in enumerate(wanted)}
    listed = sorted((i for i in items if ident(i) in rank), key=lambda i: rank[ident(i)])
    return listed + [i for i in items if ident(i) not in rank]
