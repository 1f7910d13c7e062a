"""`sigma get|describe|apply|create|delete|logs|scale`: kubectl's resource commands.

Tables come from the server (the Table format, as kubectl gets them), so `sigma get` shows
exactly the columns the API prints. Errors read like kubectl's: "Error from server (Reason):
message" for API errors, "error: ..." for local ones; either way the exit code is 1.

`apply` is deliberately simpler than kubectl's: an existing object receives the manifest as a
JSON merge patch (RFC 7386). Fields in the manifest are set, lists in it replace the live
lists, and fields the manifest no longer mentions are left alone (kubectl's three-way patch
would remove them, using the last-applied-configuration annotation). No annotation is written,
so objects stay exactly as the user wrote them plus what the server adds.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sigma.api.errors import ApiError
from sigma.api.resources import RESOURCES, ResourceType, by_kind, resolve_name
from sigma.cli import describe, manifests
from sigma.client.http import HttpClient, load_kubeconfig

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """A mistake caught before any request: printed as "error: ..."."""


# -- connection and error reporting ------------------------------------------------------------


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", "-s", help="API server URL (overrides the kubeconfig)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ./.sigma/kubeconfig, "
                        "~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: its current-context)")
    parser.add_argument("--token", help="bearer token for the API server")


def kubeconfig_path(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    candidates = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    candidates += [os.path.join(".sigma", "kubeconfig"), os.path.expanduser("~/.kube/config")]
    return next((p for p in candidates if os.path.isfile(p)), None)


def connect(args: argparse.Namespace) -> tuple[HttpClient, str]:
    """The client and the default namespace (-n, else the kubeconfig context's, else "default")."""
    namespace = getattr(args, "namespace", None)
    if args.server:
        return HttpClient(args.server, token=args.token), namespace or "default"
    path = kubeconfig_path(args.kubeconfig)
    if path is None:
        raise UsageError("no API server configured: pass --server URL or --kubeconfig PATH "
                         "(looked at $KUBECONFIG, ./.sigma/kubeconfig and ~/.kube/config)")
    try:
        config = load_kubeconfig(path, args.context)
    except (OSError, ValueError, KeyError, yaml.YAMLError) as err:
        raise UsageError(f"cannot use kubeconfig {path}: {err}") from err
    client = HttpClient.from_config(config)
    if args.token:
        client = HttpClient(config.server, token=args.token)
    return client, namespace or config.namespace or "default"


def format_api_error(err: ApiError, context: str = "") -> str:
    """kubectl's wording: Invalid objects list their causes, everything else shows the Status."""
    if err.reason == "Invalid" and err.causes:
        head = f'The {err.kind} "{err.name}" is invalid'
        lines = [f"{c.field}: {c.message}" if c.field else c.message for c in err.causes]
        if len(lines) == 1:
            return f"{head}: {lines[0]}"
        return f"{head}: \n" + "\n".join(f"* {line}" for line in lines)
    message = f"{context}: {err.message}" if context else err.message
    return f"Error from server ({err.reason}): {message}" if err.reason else f"Error from server: {message}"


def reports_errors(handler: Handler) -> Handler:
    """Turn every expected failure into kubectl's one-line message and exit code 1."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ApiError as err:
            print(format_api_error(err), file=sys.stderr)
        except BrokenPipeError:
            raise  # a closed pipe (| head) is not an error; main() exits quietly
        except (UsageError, manifests.ManifestError, ConnectionError) as err:
            print(f"error: {err}", file=sys.stderr)
        return 1

    return run


def resource_arg(text: str) -> ResourceType:
    rt = resolve_name(text)
    if rt is None:
        raise UsageError(f'the server doesn\'t have a resource type "{text}"')
    return rt


def qualified(rt: ResourceType) -> str:
    """How kubectl names a kind in its messages: "pod", "deployment.apps"."""
    return f"{rt.singular}.{rt.group}" if rt.group else rt.singular


# -- get ---------------------------------------------------------------------------------------


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


# -- apply / create ----------------------------------------------------------------------------


def _is_subset(wanted: Any, live: Any) -> bool:
    """True when every field of the manifest already has that value in the live object."""
    if isinstance(wanted, dict) and isinstance(live, dict):
        return all(k in live and _is_subset(v, live[k]) for k, v in wanted.items())
    if isinstance(wanted, list) and isinstance(live, list):
        return len(wanted) == len(live) and all(_is_subset(w, x) for w, x in zip(wanted, live, strict=True))
    return bool(wanted == live)


def _target(obj: dict[str, Any], source: str, default_ns: str) -> tuple[ResourceType, str, str | None]:
    rt = by_kind(obj["apiVersion"], obj["kind"])
    if rt is None:
        raise UsageError(f'resource mapping not found for "{source}": no matches for kind '
                         f'"{obj["kind"]}" in version "{obj["apiVersion"]}"')
    name = obj.get("metadata", {}).get("name")
    if not name:
        raise UsageError(f'{source}: a {obj["kind"]} needs metadata.name')
    namespace = (obj["metadata"].get("namespace") or default_ns) if rt.namespaced else None
    return rt, name, namespace


def apply_one(client: HttpClient, obj: dict[str, Any], source: str, default_ns: str) -> str:
    rt, name, namespace = _target(obj, source, default_ns)
    body = copy.deepcopy(obj)
    body.pop("status", None)  # status belongs to the controllers, as with kubectl apply
    body["metadata"].pop("resourceVersion", None)
    try:
        live = client.get(rt.plural, name, namespace)
    except ApiError as err:
        if err.code != 404:
            raise
        client.create(rt.plural, body, namespace)
        return f"{qualified(rt)}/{name} created"
    if _is_subset(body, live):
        return f"{qualified(rt)}/{name} unchanged"
    patched = client.patch(rt.plural, name, body, namespace, "merge")
    same = patched.get("metadata", {}).get("resourceVersion") == live["metadata"].get("resourceVersion")
    return f"{qualified(rt)}/{name} {'unchanged' if same else 'configured'}"


def _for_each_manifest(args: argparse.Namespace, verb: str,
                       act: Callable[[HttpClient, dict[str, Any], str, str], str]) -> int:
    if not args.filename:
        raise UsageError("must specify -f FILENAME (a file, a directory or - for stdin)")
    documents = manifests.load(args.filename)
    client, default_ns = connect(args)
    failed = False
    for source, obj in documents:
        try:
            print(act(client, obj, source, default_ns))
        except ApiError as err:
            print(format_api_error(err, f'error when {verb} "{source}"'), file=sys.stderr)
            failed = True
        except UsageError as err:
            print(f"error: {err}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


@reports_errors
def cmd_apply(args: argparse.Namespace) -> int:
    return _for_each_manifest(args, "applying", apply_one)


def create_one(client: HttpClient, obj: dict[str, Any], source: str, default_ns: str) -> str:
    rt, name, namespace = _target(obj, source, default_ns)
    client.create(rt.plural, obj, namespace)
    return f"{qualified(rt)}/{name} created"


@reports_errors
def cmd_create(args: argparse.Namespace) -> int:
    return _for_each_manifest(args, "creating", create_one)


# -- delete, logs, scale, describe -------------------------------------------------------------


def _targets(args: argparse.Namespace, default_ns: str,
             client: HttpClient) -> Iterable[tuple[ResourceType, str, str | None]]:
    if args.filename:
        for source, obj in manifests.load(args.filename):
            yield _target(obj, source, default_ns)
        return
    if not args.resource:
        raise UsageError("give RESOURCE NAME..., RESOURCE -l SELECTOR, or -f FILE")
    resource, names = args.resource, list(args.names)
    if "/" in resource:  # kubectl's "pod/web"
        resource, first = resource.split("/", 1)
        names.insert(0, first)
    rt = resource_arg(resource)
    namespace = default_ns if rt.namespaced else None
    if not names and (args.selector or args.all):
        items = client.list(rt.plural, namespace, label_selector=args.selector).get("items", [])
        names = [item["metadata"]["name"] for item in items]
    elif not names:
        raise UsageError(f"give the name of the {rt.singular} to delete, -l SELECTOR or --all")
    for name in names:
        yield rt, name, namespace


def _wait_gone(client: HttpClient, rt: ResourceType, name: str, namespace: str | None,
               timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.get(rt.plural, name, namespace)
        except ApiError as err:
            if err.code == 404:
                return True
            raise
        time.sleep(0.2)
    return False


@reports_errors
def cmd_delete(args: argparse.Namespace) -> int:
    client, default_ns = connect(args)
    failed = False
    for rt, name, namespace in list(_targets(args, default_ns, client)):
        try:
            client.delete(rt.plural, name, namespace, grace_period_seconds=args.grace_period)
        except ApiError as err:
            if not (err.code == 404 and args.ignore_not_found):
                print(format_api_error(err), file=sys.stderr)
                failed = True
            continue
        print(f'{qualified(rt)} "{name}" deleted')
        if args.wait and not _wait_gone(client, rt, name, namespace, args.timeout):
            print(f'error: timed out after {args.timeout:g}s waiting for {qualified(rt)} "{name}" to be gone',
                  file=sys.stderr)
            failed = True
    return 1 if failed else 0


@reports_errors
def cmd_logs(args: argparse.Namespace) -> int:
    client, namespace = connect(args)
    pod = args.pod.split("/", 1)[1] if args.pod.startswith(("pod/", "pods/", "po/")) else args.pod
    if not args.follow:
        sys.stdout.write(client.logs(pod, namespace, args.container, tail_lines=args.tail,
                                     previous=args.previous))
        return 0
    for chunk in client.logs(pod, namespace, args.container, follow=True, tail_lines=args.tail,
                             previous=args.previous):
        sys.stdout.write(chunk.decode("utf-8", "replace"))
        sys.stdout.flush()
    return 0


@reports_errors
def cmd_scale(args: argparse.Namespace) -> int:
    client, namespace = connect(args)
    resource, name = args.resource, args.name
    if "/" in resource and not name:
        resource, name = resource.split("/", 1)
    rt = resource_arg(resource)
    if "scale" not in rt.subresources:
        raise UsageError(f"{rt.plural} cannot be scaled (no scale subresource)")
    if not name:
        raise UsageError(f"give the name of the {rt.singular} to scale")
    client.patch(rt.plural, name, {"spec": {"replicas": args.replicas}},
                 namespace if rt.namespaced else None, "merge", subresource="scale")
    print(f"{qualified(rt)}/{name} scaled")
    return 0


@reports_errors
def cmd_describe(args: argparse.Namespace) -> int:
    client, default_ns = connect(args)
    rt = resource_arg(args.resource.split("/", 1)[0])
    names = list(args.names) + ([args.resource.split("/", 1)[1]] if "/" in args.resource else [])
    namespace = None if args.all_namespaces else default_ns
    if names:
        objects = [client.get(rt.plural, n, namespace if rt.namespaced else None) for n in names]
    else:
        objects = client.list(rt.plural, namespace if rt.namespaced else None,
                              label_selector=args.selector).get("items", [])
    if not objects:
        print("No resources found.", file=sys.stderr)
    for i, obj in enumerate(objects):
        if i:
            print()
        print(describe.render(client, rt, obj), end="")
    return 0


# -- the parsers -------------------------------------------------------------------------------


def _common(listing: bool = False, output: bool = False) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    add_connection_flags(parent)
    parent.add_argument("-n", "--namespace", help='namespace (default: the context\'s, else "default")')
    if listing:
        parent.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
        parent.add_argument("-l", "--selector", default="", help="label selector, e.g. app=web,tier!=db")
        parent.add_argument("--field-selector", default="", help="field selector, e.g. spec.nodeName=n1")
    if output:
        parent.add_argument("-o", "--output", choices=("yaml", "json", "wide", "name"), help="output format")
    return parent


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    listing, plain = _common(listing=True, output=True), _common()
    files = argparse.ArgumentParser(add_help=False)
    files.add_argument("-f", "--filename", action="append", default=[],
                       help="manifest file, directory or - for stdin (repeatable)")

    p = sub.add_parser("get", parents=[listing], help="list objects as tables, YAML or JSON")
    p.add_argument("resource", help='kind: "pods", "po", "deploy", "po,deploy" or "all"')
    p.add_argument("names", nargs="*", help="object names (default: all)")
    p.add_argument("-w", "--watch", action="store_true", help="after the table, print rows as they change")
    p.add_argument("--request-timeout", type=float, help="stop watching after this many seconds")
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("describe", parents=[listing], help="show an object and its events")
    p.add_argument("resource")
    p.add_argument("names", nargs="*")
    p.set_defaults(func=cmd_describe)

    for name, func, text in (("apply", cmd_apply, "create or update objects from manifests"),
                             ("create", cmd_create, "create objects from manifests")):
        p = sub.add_parser(name, parents=[plain, files], help=text)
        p.set_defaults(func=func)

    p = sub.add_parser("delete", parents=[_common(listing=True), files], help="delete objects")
    p.add_argument("resource", nargs="?", help='kind, or "kind/name"')
    p.add_argument("names", nargs="*")
    p.add_argument("--all", action="store_true", help="every object of the kind in the namespace")
    p.add_argument("--grace-period", type=int, help="seconds the pod gets to stop (0: immediately)")
    p.add_argument("--wait", action="store_true", help="return only once the objects are gone")
    p.add_argument("--timeout", type=float, default=60.0, help="how long --wait waits (seconds)")
    p.add_argument("--ignore-not-found", action="store_true", help="a missing object is not an error")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("logs", parents=[plain], help="print a container's log")
    p.add_argument("pod")
    p.add_argument("-c", "--container", help="container name (default: the only one)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing as the log grows")
    p.add_argument("--tail", type=int, help="only the last N lines")
    p.add_argument("-p", "--previous", action="store_true", help="the previous, terminated instance")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("scale", parents=[plain], help="set the replicas of a deployment")
    p.add_argument("resource", help='"deploy" or "deploy/NAME"')
    p.add_argument("name", nargs="?")
    p.add_argument("--replicas", type=int, required=True)
    p.set_defaults(func=cmd_scale)
