"""`sigma version`: the client's version and, when it answers, the server's /version."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

import sigma
from sigma.api.errors import ApiError
from sigma.cli.common import UsageError, add_connection_flags, connect


def cmd_version(args: argparse.Namespace) -> int:
    client_version = {"gitVersion": f"v{sigma.__version__}", "platform": sys.platform}
    info: dict[str, Any] = {"clientVersion": client_version}
    problem = ""
    if not args.client:
        try:
            client, _ = connect(args)
            with client:
                info["serverVersion"] = client.version()
        except (ApiError, ConnectionError, UsageError) as err:
            problem = str(err)  # an unreachable server is worth a line, not a failure
    if args.output == "json":
        print(json.dumps(info, indent=2))
    elif args.output == "yaml":
        print(yaml.safe_dump(info, sort_keys=False), end="")
    else:
        print(f"Client Version: {info['clientVersion']['gitVersion']}")
        if "serverVersion" in info:
            print(f"Server Version: {info['serverVersion'].get('gitVersion', '<unknown>')}")
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("version", help="print the client and server versions")
    add_connection_flags(p)
    p.add_argument("--client", action="store_true", help="only the client version")
    p.add_argument("-o", "--output", choices=("yaml", "json"), help="print as YAML or JSON instead of text")
    p.set_defaults(func=cmd_version)
