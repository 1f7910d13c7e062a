"""Decoding request bodies without letting one request exhaust the master.

A body is at most 3 MiB (read_body enforces it), but what it decodes to is not bounded by
that: a few hundred bytes of YAML aliases expand to gigabytes (each alias is a reference to
an earlier node, and the "through JSON" step writes every reference out in full), and a
deeply nested document overflows the recursive YAML composer (RecursionError, a 500). So YAML
is first checked on its event stream, which libyaml produces iteratively and which holds
nothing but the current event: nesting depth, expanded node count and expanded scalar
bytes (an alias counts as the whole subtree it names), a recursive alias, and a mapping key
given twice. Only a document within those limits is built. JSON is decoded by orjson (its
own depth limit is 1024) and then held to the same depth as YAML.

Every failure is a BodyError, which the API answers with 400 BadRequest.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

# Far deeper than any Kubernetes object (a pod's affinity terms are about ten levels down),
# far shallower than the composer's and the registry's recursion limits.
MAX_DEPTH = 100
# Expanded sizes: what the decoded body may hold once every alias is written out in full.
MAX_NODES = 200_000
MAX_SCALAR_BYTES = 8 * 1024 * 1024

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class BodyError(ValueError):
    """A body that is not acceptable, with a message for the client."""


class _Open:
    """A collection being read: its anchor, the totals when it began, and (mappings) the keys
    seen and whether the next node is a key."""

    __slots__ = ("anchor", "is_key", "keys", "nodes", "scalar_bytes")

    def __init__(self, anchor: str | None, mapping: bool, nodes: int, scalar_bytes: int) -> None:
        self.anchor = anchor
        self.keys: set[str] | None = set() if mapping else None
        self.is_key = mapping
        self.nodes, self.scalar_bytes = nodes, scalar_bytes


def check_yaml(raw: bytes, reject_duplicate_keys: bool = True) -> None:
    """Raise BodyError when building `raw` would exceed the limits (see the module doc)."""
    stack: list[_Open] = []
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> expanded (nodes, scalar bytes) of its node
    open_anchors: set[str] = set()
    nodes = scalar_bytes = 0

    def add(count: int, size: int) -> None:
        nonlocal nodes, scalar_bytes
        nodes += count
        scalar_bytes += size
        if nodes > MAX_NODES:
            raise BodyError(f"the YAML body expands to more than {MAX_NODES} nodes")
        if scalar_bytes > MAX_SCALAR_BYTES:
            raise BodyError(f"the YAML body expands to more than {MAX_SCALAR_BYTES} bytes")

    def key_or_value(key: str | None) -> None:
        """Bookkeeping for the mapping around a node that just completed."""
        if not stack or stack[-1].keys is None:
            return
        parent = stack[-1]
        if parent.is_key and key is not None and reject_duplicate_keys:
            if key in parent.keys:  # type: ignore[operator]
                raise BodyError(f'duplicate field "{key}" in the YAML body')
            parent.keys.add(key)  # type: ignore[union-attr]
        parent.is_key = not parent.is_key

    try:
        for event in yaml.parse(raw, Loader=_Loader):
            if isinstance(event, yaml.ScalarEvent):
                add(1, len(event.value))
                if event.anchor is not None:
                    anchors[event.anchor] = (1, len(event.value))
                key_or_value(event.value)
            elif isinstance(event, yaml.CollectionStartEvent):
                if len(stack) >= MAX_DEPTH:
                    raise BodyError(f"the body is nested deeper than {MAX_DEPTH} levels")
                add(1, 0)
                if event.anchor is not None:
                    open_anchors.add(event.anchor)
                stack.append(_Open(event.anchor, isinstance(event, yaml.MappingStartEvent), nodes - 1,
                                   scalar_bytes))
            elif isinstance(event, yaml.CollectionEndEvent):
                done = stack.pop()
                if done.anchor is not None:
                    anchors[done.anchor] = (nodes - done.nodes, scalar_bytes - done.scalar_bytes)
                    open_anchors.discard(done.anchor)
                key_or_value(None)
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor in open_anchors:
                    raise BodyError(f"the YAML body refers to its own anchor &{event.anchor} (a recursive alias)")
                size = anchors.get(event.anchor or "")
                if size is None:
                    raise BodyError(f"the YAML body refers to an undefined anchor *{event.anchor}")
                add(*size)
                key_or_value(None)
    except yaml.YAMLError as err:
        raise BodyError(f"the body of the request could not be decoded: {err}") from err


def decode_yaml(raw: bytes, reject_duplicate_keys: bool = True) -> Any:
    """A YAML body as its JSON value (Kubernetes reads YAML through JSON: timestamps become
    strings; what JSON cannot hold, such as non-string keys, is refused)."""
    check_yaml(raw, reject_duplicate_keys)
    try:
        return orjson.loads(orjson.dumps(yaml.load(raw, Loader=_Loader)))
    except (ValueError, TypeError, yaml.YAMLError, RecursionError) as err:
        raise BodyError(f"the body of the request could not be decoded: {err}") from err


def decode_json(raw: bytes) -> Any:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise BodyError(f"the body of the request could not be decoded: {err}") from err
    # Only a body with more brackets than the depth limit can be nested that deep: the
    # count is a C-speed scan, the walk only runs for large bodies.
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH:
        check_depth(value)
    return value


def check_depth(value: Any) -> None:
    """BodyError when `value` nests deeper than MAX_DEPTH (iteratively: no recursion to exhaust)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > MAX_DEPTH:
            raise BodyError(f"the body is nested deeper than {MAX_DEPTH} levels")
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
