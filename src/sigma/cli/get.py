"""`sigma get`: tables printed by the server, or the objects as YAML/JSON/names; `-w` to watch.

The Table comes from the server (as kubectl asks for it), so the columns are exactly the API's;
priority-1 columns appear with -o wide, and -A puts a NAMESPACE column first.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sigma.api.errors import ApiError
from sigma.api.resources import RESOURCES, ResourceType, by_kind
from sigma.cli.common import UsageError, connect, format_api_error, qualified, reports_errors, resource_arg
from sigma.client.http import HttpClient


def _resource_types(text: str) -> list[ResourceType]:
    """"pods", "po,deploy" or "all" (every kind in the "all" category)."""
    if text == "all":
        return [r for r in RESOURCES if "all" in r.categories]
    return [resource_arg(part) for part in text.split(",") if part]


def _cell(value: Any) -> str:
    if value is None:
        return "<none>"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(_cell(v) for v in value)
    return str(value)


def table_view(table: dict[str, Any], wide: bool, with_namespace: bool,
               prefix: str = "") -> tuple[list[str], list[list[str]]]:
    """Headers and rows of a server Table: priority-1 columns only when wide, like kubectl."""
    columns = table.get("columnDefinitions") or []
    keep = [i for i, c in enumerate(columns) if wide or not c.get("priority", 0)]
    headers = [columns[i]["name"].upper() for i in keep]
    rows = []
    for row in table.get("rows") or []:
        cells = [_cell(row["cells"][i]) if i < len(row["cells"]) else "" for i in keep]
        if prefix and cells:
            cells[0] = f"{prefix}/{cells[0]}"
        if with_namespace:
            cells.insert(0, row.get("object", {}).get("metadata", {}).get("namespace", ""))
        rows.append(cells)
    return (["NAMESPACE", *headers] if with_namespace else headers), rows


def print_table(headers: list[str], rows: list[list[str]], show_header: bool = True,
                widths: list[int] | None = None) -> list[int]:
    """Print with rich in kubectl's layout (no borders, 3 spaces between columns); returns the
    column widths so watch output can keep later rows aligned under the first header."""
    widths = [max([len(h), *(len(r[i]) for r in rows), (widths or [])[i] if widths else 0])
              for i, h in enumerate(headers)]
    table = Table(box=None, show_header=show_header, header_style="bold", pad_edge=False,
                  padding=(0, 3, 0, 0), show_edge=False)
    for header, width in zip(headers, widths, strict=True):
        table.add_column(Text(header), min_width=width, no_wrap=True)
    for row in rows:
        table.add_row(*(Text(c) for c in row))
    console = Console(width=sum(widths) + 3 * len(widths) + 1, highlight=False, soft_wrap=False)
    with console.capture() as captured:
        console.print(table)
    # rich pads the last column to its width; kubectl's lines end at their last character.
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    return widths


def _as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


def print_objects(objects: list[dict[str, Any]], output: str, single: bool) -> None:
    if output == "name":
        for obj in objects:
            rt = by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
            print(f"{qualified(rt) if rt else obj.get('kind', '').lower()}/{obj['metadata']['name']}")
        return
    doc = objects[0] if single and len(objects) == 1 else _as_list(objects)
    if output == "json":
        print(json.dumps(doc, indent=4))
    else:
        print(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False), end="")


STRUCTURED = ("yaml", "json", "name")


def _scope(rt: ResourceType, namespace: str | None) -> str | None:
    return namespace if rt.namespaced else None


@reports_errors
def cmd_get(args: argparse.Namespace) -> int:
    client, default_ns = connect(args)
    types = _resource_types(args.resource)
    if args.names and len(types) > 1:
        raise UsageError("names cannot be given with several resource types")
    # Named objects are looked up in one namespace; listings may span all of them (-A).
    args.namespace = default_ns
    listing_ns = None if args.all_namespaces else default_ns
    if args.watch:
        return watch_rows(client, types[0], listing_ns, args)
    if args.output in STRUCTURED:
        objects = [obj for rt in types for obj in _fetch_objects(client, rt, listing_ns, args)]
        print_objects(objects, args.output, single=len(args.names) == 1)
        return 0
    failed, printed = False, 0
    for rt in types:
        tables = []
        for name in args.names or [None]:
            where = _scope(rt, default_ns if name else listing_ns)
            try:
                tables.append(client.get_table(rt.plural, where, name, label_selector=args.selector,
                                               field_selector=args.field_selector))
            except ApiError as err:
                print(format_api_error(err), file=sys.stderr)
                failed = True
        with_ns = listing_ns is None and rt.namespaced and not args.names
        views = [table_view(t, args.output == "wide", with_ns, qualified(rt) if len(types) > 1 else "")
                 for t in tables]
        rows = [row for _, more in views for row in more]
        if rows:
            print("\n" if printed else "", end="")
            print_table(views[0][0], rows)
            printed += 1
    if not printed and not failed:
        namespaced = any(rt.namespaced for rt in types)
        where = f" in {listing_ns} namespace" if listing_ns and namespaced else ""
        print(f"No resources found{where}.", file=sys.stderr)
    return 1 if failed else 0


def _fetch_objects(client: HttpClient, rt: ResourceType, listing_ns: str | None,
                   args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.names:
        return [client.get(rt.plural, name, _scope(rt, args.namespace)) for name in args.names]
    items = client.list(rt.plural, _scope(rt, listing_ns), label_selector=args.selector,
                        field_selector=args.field_selector).get("items", [])
    for item in items:  # list items may omit their kind; -o yaml shows complete objects
        item.setdefault("apiVersion", rt.api_version)
        item.setdefault("kind", rt.kind)
    return list(items)


def watch_rows(client: HttpClient, rt: ResourceType, namespace: str | None, args: argparse.Namespace) -> int:
    """`get -w`: the current table, then one row per change until interrupted or --request-timeout."""
    ns = namespace if rt.namespaced else None
    with_ns = namespace is None and rt.namespaced
    wide = args.output == "wide"
    table = client.get_table(rt.plural, ns, label_selector=args.selector, field_selector=args.field_selector)
    headers, rows = table_view(table, wide, with_ns)
    widths = print_table(headers, rows)
    sys.stdout.flush()
    version = table.get("metadata", {}).get("resourceVersion", "")
    deadline = None if args.request_timeout is None else time.monotonic() + args.request_timeout
    last_row: dict[str, list[str]] = {}
    while deadline is None or time.monotonic() < deadline:
        remaining = None if deadline is None else max(1, int(deadline - time.monotonic()))
        for event in client.watch_table(rt.plural, ns, resource_version=version,
                                        label_selector=args.selector, field_selector=args.field_selector,
                                        timeout_seconds=remaining):
            obj = event.object
            version = obj.get("metadata", {}).get("resourceVersion", version)
            if obj.get("kind") == "Table":
                rows = table_view(obj, wide, with_ns)[1]
                for row in obj.get("rows") or []:  # the row's object carries the new version
                    version = row.get("object", {}).get("metadata", {}).get("resourceVersion", version)
            else:  # a server without Table watch: print the row it would print for this object
                rows = _row_for(client, rt, obj, event.type, wide, with_ns, last_row)
            if rows:
                print_table(headers, rows, show_header=False, widths=widths)
                sys.stdout.flush()
    return 0


def _row_for(client: HttpClient, rt: ResourceType, obj: dict[str, Any], kind: str, wide: bool,
             with_ns: bool, last_row: dict[str, list[str]]) -> list[list[str]]:
    meta = obj.get("metadata", {})
    key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    if kind == "DELETED" or kind == "BOOKMARK":
        row = last_row.pop(key, None) if kind == "DELETED" else None
        return [row] if row else []
    try:
        table = client.get_table(rt.plural, meta.get("namespace"), meta.get("name"))
    except ApiError:
        return []
    rows = table_view(table, wide, with_ns)[1]
    if rows:
        last_row[key] = rows[0]
    return rows
