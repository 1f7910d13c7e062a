"""`sigma secrets rotate-key`: a new key for Secrets at rest (sigma.api.encryption).

    sigma secrets rotate-key [--state-dir .sigma]

The new key goes first in STATE/encryption-config.yaml and encrypts from the master's next
start; the old keys stay there to read what they encrypted, and that start re-encrypts every
Secret under the new key. Once it has, an old key may be removed from the file (as with
Kubernetes' EncryptionConfiguration). Run it where the master's state directory is.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("secrets", help="manage the encryption of Secrets at rest (sigma secrets rotate-key)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    rotate = actions.add_parser("rotate-key", help="put a new encryption key first (used from the next start)")
    rotate.add_argument("--state-dir", default=".sigma", help="the master's state directory")
    rotate.set_defaults(func=run_rotate)


def run_rotate(args: argparse.Namespace) -> int:
    from sigma.api.encryption import CONFIG_FILE, rotate_key

    state = Path(args.state_dir).resolve()
    if not state.is_dir():
        raise SystemExit(f"error: {state} is not a state directory (--state-dir)")
    name = rotate_key(state)
    print(f"{name} is now first in {state / CONFIG_FILE}: restart the master to encrypt every Secret with it; "
          "the older keys stay for reading until then")
    return 0
