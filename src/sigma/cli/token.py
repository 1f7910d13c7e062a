"""`sigma token create`: a bootstrap token with which an agent joins the cluster.

    sigma token create [--state-dir .sigma] [--ttl 24h]
    sigma agent --master URL --bootstrap-token TOKEN [--ca-file STATE/auth/ca.crt] ...

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
    create.set_defaults(func=run_create)


def run_create(args: argparse.Namespace) -> int:
    from sigma.api.auth.tokens import create_bootstrap_token

    print(create_bootstrap_token(Path(args.state_dir).resolve(), args.ttl))
    return 0
