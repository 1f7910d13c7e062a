"""What every command that talks to the API shares: connection flags, finding the server
(--server, else a kubeconfig), and kubectl's error wording.

API errors print as "Error from server (Reason): message", local mistakes as "error: ...";
either way the exit code is 1, so scripts can tell success from failure as with kubectl.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
from collections.abc import Callable

import yaml

from sigma.api.errors import ApiError
from sigma.api.resources import ResourceType, resolve_name
from sigma.cli import manifests
from sigma.client.http import HttpClient
from sigma.client.kubeconfig import KubeconfigNotFound, load_kubeconfig
from sigma.client.kubeconfig import kubeconfig_paths as find_kubeconfigs

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """A mistake caught before any request: printed as "error: ..."."""


# -- connection and error reporting ------------------------------------------------------------


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", "-s", help="API server URL (overrides the kubeconfig)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: the files in $KUBECONFIG, merged as kubectl "
                        "does, else ~/.kube/config, else ./.sigma/kubeconfig)")
    parser.add_argument("--context", help="kubeconfig context (default: its current-context)")
    parser.add_argument("--token", help="bearer token for the API server")


def kubeconfig_paths(explicit: str | None) -> list[str]:
    """The kubeconfig files to read, merged in this order (sigma.client.kubeconfig)."""
    try:
        return find_kubeconfigs(explicit)
    except KubeconfigNotFound as err:
        raise UsageError(f"no API server configured: pass --server URL or --kubeconfig PATH ({err})") from None


def connect(args: argparse.Namespace) -> tuple[HttpClient, str]:
    """The client and the default namespace (-n, else the kubeconfig context's, else "default")."""
    namespace = getattr(args, "namespace", None)
    if args.server:
        return HttpClient(args.server, token=args.token), namespace or "default"
    paths = kubeconfig_paths(args.kubeconfig)
    try:
        config = load_kubeconfig(paths, args.context)
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as err:
        raise UsageError(f"cannot use kubeconfig {os.pathsep.join(paths)}: {err}") from err
    if args.token:
        config = dataclasses.replace(config, token=args.token)
    return HttpClient.from_config(config), namespace or config.namespace or "default"


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
