"""`sigma token create`: a bootstrap token with which an agent joins the cluster.

    sigma token create [--state-dir .sigma] [--ttl 24h] [--reusable] [--node NAME]
    sigma agent --master URL --bootstrap-token-file FILE [--ca-file STATE/auth/ca.crt] ...
    SIGMA_BOOTSTRAP_TOKEN=... sigma agent --master URL ...

A token joins one node and is then used up, unless --reusable (many machines joining with
one token until it expires). It may join a node whose name is not joined already; --node
NAME makes a token that may join only NAME and replace its credential: how an
administrator re-joins a node whose agent lost its own. Pass it to the agent in a file or
the environment, not on the command line, where `ps` shows it to every user.

The token is written (hashed) to the master's state directory, which the master re-reads,
so it must run on a machine that shares the master's state directory.
"""

from __future__ import annotations

import argparse
from pathlib import Path

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> float:
    unit = text[-1:] if text[-1:] in UNITS else "s"
    number = text[:-1] if text[-1:] in UNITS else text
    try:
        return float(number) * UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a duration like 30m, 24h or 3600 is required, not {text!r}") from None


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("token", help="manage bootstrap tokens (sigma token create)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="print a new bootstrap (join) token")
    create.add_argument("--state-dir", default=".sigma", help="the master's state directory")
    create.add_argument("--ttl", type=_duration, default="24h", help="how long it may be used (default 24h)")
    create.add_argument("--reusable", action="store_true",
                        help="may join any number of nodes until it expires (default: one join)")
    create.add_argument("--node", default="", metavar="NAME",
                        help="may join only NAME, replacing its credential (re-joining a node that lost its own)")
    create.set_defaults(func=run_create)


def run_create(args: argparse.Namespace) -> int:
    from sigma.api.auth.tokens import create_bootstrap_token
    from sigma.api.validation import dns1123_subdomain

    if args.node and dns1123_subdomain(args.node, "--node"):
        raise SystemExit(f"error: --node {args.node!r} is not a valid node name")
    print(create_bootstrap_token(Path(args.state_dir).resolve(), args.ttl, reusable=args.reusable, node=args.node))
    return 0
