"""Reading manifests for `apply -f`, `create -f` and `delete -f`.

A source is a file, a directory (its .yaml/.yml/.json files, sorted) or "-" (stdin). A file is
multi-document YAML or JSON; a List object (kind "List" or "PodList" and the like) is expanded
into its items. A parse error names the file and the line, because a manifest is usually long
and the YAML parser's own message rarely says where to look.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import yaml

SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(Exception):
    """A manifest that cannot be read or parsed; the message names the source and line."""


def load(sources: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Every object in the sources, in order, each with the name of the file it came from."""
    documents: list[tuple[str, dict[str, Any]]] = []
    for source in sources:
        for path in _expand(source):
            text = sys.stdin.read() if path == "-" else _read(path)
            name = "STDIN" if path == "-" else path
            for obj in parse(text, name):
                documents.append((name, obj))
    return documents


def _expand(source: str) -> list[str]:
    if source == "-":
        return [source]
    if os.path.isdir(source):
        return [os.path.join(source, f) for f in sorted(os.listdir(source)) if f.endswith(SUFFIXES)]
    if not os.path.exists(source):
        raise ManifestError(f'the path "{source}" does not exist')
    return [source]


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(f"cannot read {path}: {err}") from err


def parse(text: str, source: str) -> list[dict[str, Any]]:
    """The objects in one file's text. JSON is parsed as JSON so that its errors say JSON."""
    if source.endswith(".json") or text.lstrip().startswith(("{", "[")):
        try:
            documents: list[Any] = [json.loads(text)]
        except json.JSONDecodeError as err:
            raise ManifestError(f"error parsing {source}: line {err.lineno}, column {err.colno}: "
                                f"{err.msg}") from err
    else:
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            what = " ".join(p for p in (err.context, err.problem) if p)
            raise ManifestError(f"error parsing {source}: {where}{what}") from err
        except yaml.YAMLError as err:
            raise ManifestError(f"error parsing {source}: {err}") from err
    objects: list[dict[str, Any]] = []
    for index, doc in enumerate(documents, 1):
        if doc is None:
            continue  # an empty document (a trailing "---")
        objects += _objects_of(doc, source, index)
    return objects


def _objects_of(doc: Any, source: str, index: int) -> list[dict[str, Any]]:
    if isinstance(doc, list):  # a JSON array of objects
        return [obj for i, item in enumerate(doc) for obj in _objects_of(item, source, index + i)]
    if not isinstance(doc, dict):
        raise ManifestError(f"error validating {source}: document {index} is a {type(doc).__name__}, "
                            "not an object")
    if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
        return [obj for item in doc["items"] for obj in _objects_of(item, source, index)]
    missing = [field for field in ("apiVersion", "kind") if not doc.get(field)]
    if missing:
        raise ManifestError(f"error validating {source}: document {index}: "
                            + ", ".join(f"{field} not set" for field in missing))
    if not isinstance(doc.get("metadata", {}), dict):
        raise ManifestError(f"error validating {source}: document {index}: metadata is not an object")
    doc.setdefault("metadata", {})
    return [doc]
