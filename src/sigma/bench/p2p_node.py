"""The processes of `sigma bench p2p`, each started inside its own network namespace:

    python -m sigma.bench.p2p_node tracker --listen ADDR:PORT [--max-claims K --ttl S]
    python -m sigma.bench.p2p_node push --registry URL --repo REPO --file PATH
    python -m sigma.bench.p2p_node peer CONF_JSON

A peer is what an agent runs for image pulls (sigma.p2p's PeerServer, Downloader and
TrackerClient, nothing bench-specific in the data path). It prints {"ready": url}, then obeys
one command per stdin line and answers each with one JSON line on stdout:

    direct  GET the whole blob from the registry (what every node does without P2P)
    p2p     fetch the blob through the tracker and the other peers
    prepare write the p2p phase's partial file in full (zeros), untimed: see _prepare
    verify  sha256 of the blob the p2p phase left (after the timing, so it slows no one)

While a phase runs it also prints {"progress": bytes} about once a second. Fault injection:
"corrupt" serves every piece with a flipped byte; "die_at" SIGKILLs the process once it holds
that fraction of the pieces (surely while the others are fetching from it).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import sys
import threading
import time
from typing import Any

import httpx

PROGRESS_EVERY = 1.0
_out = threading.Lock()  # progress lines and answers come from two threads: whole lines only


def _say(obj: dict[str, Any]) -> None:
    with _out:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def tracker(argv: list[str]) -> None:
    import uvicorn

    from sigma.p2p.tracker import TrackerState, standalone_app

    p = argparse.ArgumentParser(prog="p2p_node tracker")
    p.add_argument("--listen", required=True)
    p.add_argument("--max-claims", type=int, default=0)
    p.add_argument("--ttl", type=float, default=30.0)
    args = p.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)
    state = TrackerState(peer_ttl=args.ttl, max_claims=args.max_claims)
    uvicorn.run(standalone_app(state), host=host, port=int(port), log_level="warning", access_log=False)


def push(argv: list[str]) -> None:
    from sigma.agent.oci_registry import push_blob

    p = argparse.ArgumentParser(prog="p2p_node push")
    p.add_argument("--registry", required=True)
    p.add_argument("--repo", required=True)
    p.add_argument("--file", required=True)
    args = p.parse_args(argv)
    with open(args.file, "rb") as f:
        data = f.read()
    with httpx.Client(timeout=300) as client:
        _say(push_blob(client, args.registry, args.repo, data))


class Peer:
    def __init__(self, conf: dict[str, Any]) -> None:
        from sigma.p2p.peer import PeerServer

        self.conf = conf
        self.server = PeerServer(
            conf["address"], conf["port"], advertise=conf["address"], upload_slots=int(conf.get("upload_slots", 4))
        ).start()
        self.server.corrupt = bool(conf.get("corrupt"))
        # One Downloader for the process's life, built before the timed phase, as the agent
        # does (sigma.agent.pulls builds one at start and reuses it for every pull): its
        # imports and HTTP clients are not what a pull costs.
        from sigma.p2p.download import Downloader, TrackerClient

        self.downloader = Downloader(
            TrackerClient(conf["tracker"]),
            self.server,
            piece_size=conf["piece_size"],
            per_peer_limit=conf["per_peer"],
            registry_limit=conf["registry_per_node"],
            total_limit=conf["parallel"],
            poll=conf["poll"],
        )
        self.dest = os.path.join(conf["workdir"], f"node{conf['index']}.blob")
        self.progress = 0

    def serve(self) -> None:
        _say({"ready": self.server.url})
        for line in sys.stdin:
            command = line.strip()
            if command == "quit":
                break
            _say(self.run(command))
        self.server.stop()

    def run(self, command: str) -> dict[str, Any]:
        if command == "verify":
            from sigma.digests import sha256_file

            return {"digest": sha256_file(self.dest) if os.path.exists(self.dest) else None}
        if command == "prepare":
            return self._prepare()
        self.progress = 0
        stop = threading.Event()
        threading.Thread(target=self._report_progress, args=(stop,), daemon=True).start()
        cpu0 = time.process_time()
        try:
            out = self._direct() if command == "direct" else self._p2p()
        except Exception as err:  # the orchestrator reports it; the peer stays up for the rest
            out = {"error": f"{type(err).__name__}: {err}"}
        finally:
            stop.set()
        return {**out, "done": time.time(), "cpu_s": round(time.process_time() - cpu0, 3)}

    def _report_progress(self, stop: threading.Event) -> None:
        while not stop.wait(PROGRESS_EVERY):
            blob = self.server.blobs.get(self.conf["digest"])
            held = len(blob.have) * blob.piece_size if blob is not None else self.progress
            _say({"progress": min(held, self.conf["size"])})

    def _direct(self) -> dict[str, Any]:
        """The whole blob in one GET, hashed and written as it streams, then dropped."""
        h = hashlib.sha256()
        path = self.dest + ".direct"
        with (
            httpx.Client(timeout=60) as client,
            open(path, "wb") as f,
            client.stream("GET", self.conf["blob_url"]) as resp,
        ):
            resp.raise_for_status()
            for chunk in resp.iter_raw(1 << 20):
                h.update(chunk)
                f.write(chunk)
                self.progress += len(chunk)
        os.unlink(path)  # not kept: the p2p phase must start from nothing
        return {"digest": "sha256:" + h.hexdigest(), "bytes": self.progress}

    def _prepare(self) -> dict[str, Any]:
        """Reserve this node's memory for the blob before the timed phase: the partial file the
        downloader is about to fill, written out in zeros. The downloader keeps a partial file
        that has the right size (and trusts none of its bytes). Without this, the first touch
        of each page happens during the timed phase, and on a VM whose host backs guest RAM
        lazily (free page reporting hands freed pages back) that first touch costs several
        times the copy itself: a cost of this one-machine lab, not of 16 real nodes."""
        cpu0 = time.process_time()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.dest)
        zeros = memoryview(bytearray(1 << 20))
        fd = os.open(self.dest + ".partial", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            off, size = 0, self.conf["size"]
            while off < size:
                off += os.pwrite(fd, zeros[: min(len(zeros), size - off)], off)
        finally:
            os.close(fd)
        return {"prepared": size, "cpu_s": round(time.process_time() - cpu0, 3)}

    def _p2p(self) -> dict[str, Any]:
        c = self.conf
        if c.get("die_at") is not None:
            threading.Thread(target=self._die_at, args=(float(c["die_at"]),), daemon=True).start()
        report = self.downloader.fetch(c["digest"], c["size"], c["blob_url"], self.dest)
        return {"report": report.to_dict()}

    def _die_at(self, fraction: float) -> None:
        pieces = -(-self.conf["size"] // self.conf["piece_size"])
        while True:
            blob = self.server.blobs.get(self.conf["digest"])
            if blob is not None and len(blob.have) >= max(1, int(pieces * fraction)):
                os.kill(os.getpid(), signal.SIGKILL)  # a crashed node: no goodbye to the tracker
            time.sleep(0.005)


def main(argv: list[str]) -> None:
    role, rest = argv[0], argv[1:]
    if role == "tracker":
        tracker(rest)
    elif role == "push":
        push(rest)
    elif role == "peer":
        Peer(json.loads(rest[0])).serve()
    else:
        raise SystemExit(f"unknown role {role!r}: tracker, push or peer")


if __name__ == "__main__":
    main(sys.argv[1:])
