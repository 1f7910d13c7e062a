"""`sigma describe|apply|create|delete|logs|scale`, and the parsers of every resource command
(`get` lives in sigma.cli.get). Connection flags and error wording are in sigma.cli.common.

`apply` is deliberately simpler than kubectl's: an existing object receives the manifest as a
JSON merge patch (RFC 7386). Fields in the manifest are set, lists in it replace the live
lists, and fields the manifest no longer mentions are left alone (kubectl's three-way patch
would remove them, using the last-applied-configuration annotation). No annotation is written,
so objects stay exactly as the user wrote them plus what the server adds. "unchanged" is
decided before any write: when every field of the manifest already has its value in the live
object, nothing is sent, so server-side defaults never make an apply look like a change.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.resources import ResourceType, by_kind
from sigma.cli import describe, manifests
from sigma.cli.common import (
    UsageError,
    add_connection_flags,
    connect,
    format_api_error,
    qualified,
    reports_errors,
    resource_arg,
)
from sigma.cli.get import cmd_get
from sigma.client.http import HttpClient

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
    p.add_argument("resource", help='kind: "pods", "po", "deploy", "nodes"...')
    p.add_argument("names", nargs="*", help="object names (default: all)")
    p.set_defaults(func=cmd_describe)

    for name, func, text in (("apply", cmd_apply, "create or update objects from manifests"),
                             ("create", cmd_create, "create objects from manifests")):
        p = sub.add_parser(name, parents=[plain, files], help=text)
        p.set_defaults(func=func)

    p = sub.add_parser("delete", parents=[_common(listing=True), files], help="delete objects")
    p.add_argument("resource", nargs="?", help='kind, or "kind/name"')
    p.add_argument("names", nargs="*", help="object names")
    p.add_argument("--all", action="store_true", help="every object of the kind in the namespace")
    p.add_argument("--grace-period", type=int, help="seconds the pod gets to stop (0: immediately)")
    p.add_argument("--wait", action="store_true", help="return only once the objects are gone")
    p.add_argument("--timeout", type=float, default=60.0, help="how long --wait waits (seconds)")
    p.add_argument("--ignore-not-found", action="store_true", help="a missing object is not an error")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("logs", parents=[plain], help="print a container's log")
    p.add_argument("pod", help='the pod, or "pod/NAME"')
    p.add_argument("-c", "--container", help="container name (default: the only one)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing as the log grows")
    p.add_argument("--tail", type=int, help="only the last N lines")
    p.add_argument("-p", "--previous", action="store_true", help="the previous, terminated instance")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("scale", parents=[plain], help="set the replicas of a deployment")
    p.add_argument("resource", help='"deploy" or "deploy/NAME"')
    p.add_argument("name", nargs="?", help="the deployment (when RESOURCE is only the kind)")
    p.add_argument("--replicas", type=int, required=True, help="the new number of replicas")
    p.set_defaults(func=cmd_scale)
