"""`sigma image`: the node's image store by hand (import, pull, list, remove, gc).

The agent pulls by itself (sigma.agent.pulls); this is for preloading a node, pulling
through the P2P tracker from a shell, and looking at what a node holds.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from sigma.agent.images import DEFAULT_ROOT, ImageStore, normalize, parse_size


def add_parser(subparsers: Any) -> None:
    """`sigma image import PATH [--name N] | pull REF | ls | rm NAME | gc --budget SIZE`."""
    image = subparsers.add_parser("image", help="manage the node's image store")
    image.add_argument("--store", default=DEFAULT_ROOT, help="image store directory")
    sub = image.add_subparsers(dest="image_command", required=True)
    imp = sub.add_parser("import", help="import an OCI layout directory or an OCI/docker-save tar")
    imp.add_argument("path", help="an OCI layout directory, or an OCI or docker-save tar file")
    imp.add_argument("--name", help="name the imported image (default: its ref annotation or tag)")
    pull = sub.add_parser("pull", help="pull an image from an OCI registry (HOST[:PORT]/REPO[:TAG|@DIGEST])")
    pull.add_argument("ref", help="HOST[:PORT]/REPO[:TAG|@DIGEST]")
    pull.add_argument("--registry", default=os.environ.get("SIGMA_REGISTRY"), help="default registry host[:port]")
    pull.add_argument("--plain-http", action="store_true", default=None, help="HTTP, not HTTPS (auto for loopback)")
    pull.add_argument("--tracker", help="P2P tracker URL (e.g. http://MASTER:6443/p2p): fetch blobs from peers")
    pull.add_argument("--peer-listen", default="0.0.0.0:0", help="where to serve pieces while pulling")
    gc = sub.add_parser("gc", help="remove least recently used images until the store fits a budget")
    gc.add_argument("--budget", required=True, type=parse_size, help="bytes, or 500M / 10G")
    gc.add_argument("--keep", action="append", default=[], help="an image in use (repeatable)")
    sub.add_parser("ls", help="list images")
    rm = sub.add_parser("rm", help="forget an image name")
    rm.add_argument("name", help="the image name to forget (its blobs go at the next gc)")
    image.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    store = ImageStore(args.store)
    if args.image_command == "import":
        for name, digest in store.import_path(args.path, args.name):
            print(f"{name}\t{digest}")
    elif args.image_command == "pull":
        from sigma.agent.oci_registry import ImagePullError, ensure_image, pull_with

        try:
            with pull_with(args.registry, args.plain_http, args.tracker, args.peer_listen) as puller:
                digest = ensure_image(store, args.ref, "Always", puller)
        except ImagePullError as err:
            print(f"error: {err.reason}: {err}", file=sys.stderr)
            return 1
        print(f"{normalize(args.ref)}\t{digest}")
    elif args.image_command == "gc":
        for name in store.gc(args.budget, args.keep):
            print(f"removed\t{name}")
    elif args.image_command == "ls":
        for name, digest in sorted(store.refs().items()):
            print(f"{name}\t{digest}")
    else:
        store.remove(args.name)
    return 0
