"""Benchmark of image blob distribution: `sigma bench p2p [--blob-mb 32 --peers 16 --cap-mbps 100]`.

A flash crowd: N peers (one process each, like N agents) want the same blob at the same
moment. Each peer's download and upload are capped at --cap-mbps (token buckets in user
space: netem is not in this kernel); the registry (Debian's docker-registry) sits behind a
proxy that caps its egress at --registry-cap-mbps, the single uplink that P2P relieves. The
default, 3x one peer's cap, is the setting P2P exists for (Kraken's, Dragonfly's): the
registry is the bottleneck, so registry-only time grows with N while P2P should stay near
the floor. (With a registry much faster than N peers together, P2P has nothing to win.)

1. registry only: every peer GETs the whole blob from the registry.
2. P2P: the peers fetch pieces from each other through the tracker (hosted here as the
   master hosts it), going to the registry only for pieces no peer holds. With --faults (the
   default) one peer serves corrupt pieces and another is killed (SIGKILL) mid-transfer; the
   survivors must still finish, and the report counts what they had to re-fetch.

The floor is what no scheme can beat: size / per-peer cap. Reported as ratios, like the
anchors (Kraken 1.8x, Dragonfly 1.5x); registry_bound_s = N x size / registry cap is the
best registry-only can do. Every peer is a Python process on this machine, so the CPU the
peers used and the load average are reported too: on a small, busy machine the CPU, not
the network caps, can be what limits P2P. Runs as root or not; needs docker-registry.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import httpx
import uvicorn

from sigma.agent.registry import push_blob
from sigma.p2p.ratelimit import TokenBucket
from sigma.p2p.shaper import ShapedProxy, free_port
from sigma.p2p.tracker import TrackerState, standalone_app


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sigma bench p2p")
    p.add_argument("--blob-mb", type=float, default=32)
    p.add_argument("--peers", type=int, default=16)
    p.add_argument("--cap-mbps", type=float, default=100, help="per-peer download and upload cap")
    p.add_argument("--registry-cap-mbps", type=float, default=300, help="the registry's egress cap")
    p.add_argument("--piece-mb", type=float, default=1, help="1 MiB: 32 pieces of the default blob for 16 peers")
    p.add_argument("--faults", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--registry-bin", default=shutil.which("docker-registry") or "/usr/bin/docker-registry")
    return p.parse_args(argv)


def run(argv: list[str]) -> dict[str, Any]:
    args = parse(argv)
    size = int(args.blob_mb * (1 << 20))
    cap = args.cap_mbps * 1e6 / 8
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="sigma-bench-p2p-") as work:
        registry = _start_registry(args.registry_bin, work)
        proxy = ShapedProxy(registry[0], args.registry_cap_mbps * 1e6 / 8).start()
        tracker_url, stop_tracker = _start_tracker()
        try:
            data = os.urandom(size)
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            with httpx.Client(timeout=120) as client:
                push_blob(client, f"http://{registry[0]}", "bench/blob", data)
            del data
            url = f"http://{proxy.address}/v2/bench/blob/blobs/{digest}"
            common = {"digest": digest, "size": size, "url": url, "cap": cap, "work": work}
            _log(f"registry only: {args.peers} peers x {args.blob_mb:g} MB at {args.cap_mbps:g} Mb/s")
            reg = _round(args.peers, {**common, "mode": "registry"}, faults=False)
            proxy.bytes_sent = 0
            _log("p2p" + (" (one corrupt peer, one killed mid-transfer)" if args.faults else ""))
            p2p = _round(
                args.peers,
                {**common, "mode": "p2p", "tracker": tracker_url, "piece": int(args.piece_mb * (1 << 20))},
                faults=args.faults,
            )
            registry_bytes_p2p = proxy.bytes_sent
        finally:
            stop_tracker()
            proxy.stop()
            registry[1].terminate()
            registry[1].wait(timeout=10)
    floor = size / cap
    survivors = p2p["times"]
    failures = [f for r in p2p["reports"] for f in r["failures"]]
    dead = [f for f in failures if f["peer"] in p2p["killed_urls"]]
    return {
        "bench": "p2p",
        "blob_mb": args.blob_mb,
        "peers": args.peers,
        "cap_mbps": args.cap_mbps,
        "registry_cap_mbps": args.registry_cap_mbps,
        "piece_mb": args.piece_mb,
        "registry_only_s": round(max(reg["times"]), 2),
        "p2p_s": round(max(survivors), 2),
        "floor_s": round(floor, 2),
        "p2p_over_floor": round(max(survivors) / floor, 2),
        "registry_over_floor": round(max(reg["times"]) / floor, 2),
        "registry_bound_s": round(args.peers * size / (args.registry_cap_mbps * 1e6 / 8), 2),
        "p99_peer_s": round(_p99(survivors), 2),
        "p50_peer_s": round(sorted(survivors)[len(survivors) // 2], 2),
        "peers_completed": len(survivors),
        "registry_mb_p2p": round(registry_bytes_p2p / (1 << 20), 1),
        "registry_mb_registry_only": round(reg["registry_bytes"] / (1 << 20), 1),
        "faults": {
            "corrupt_pieces_refused": sum("corrupt" in f["reason"] for f in failures),
            # Failures the survivors met at the killed peer: transfers it cut off mid-piece,
            # and connections it refused before they learnt to exclude it.
            "transfers_cut_by_dead_peer": sum("ConnectError" not in f["reason"] for f in dead),
            "connects_refused_by_dead_peer": sum("ConnectError" in f["reason"] for f in dead),
            "killed_peers": p2p["killed"],
        },
        "cpu_s_peers": {"registry_only": round(reg["cpu_s"], 1), "p2p": round(p2p["cpu_s"], 1)},
        "cpus": os.cpu_count(),
        "loadavg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
    }


def _round(n: int, config: dict[str, Any], faults: bool) -> dict[str, Any]:
    procs = []
    victim = n - 1 if faults and n > 2 else -1
    for i in range(n):
        # The victim SIGKILLs itself once it holds half the blob: surely while it serves
        # others (a timer from "go" could fire before it held anything worth asking for).
        conf = {**config, "index": i, "corrupt": faults and i == 0, "die_at_half": i == victim}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "sigma.bench.p2p", "--worker", json.dumps(conf)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    urls = []
    for proc in procs:  # every peer is up before the crowd arrives
        assert proc.stdout is not None
        urls.append(json.loads(proc.stdout.readline())["ready"])
    go = time.time()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    killed = [victim] if victim >= 0 else []
    times, reports = [], []
    registry_bytes, cpu = 0, 0.0
    for i, proc in enumerate(procs):
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if i in killed or not line:
            continue
        out = json.loads(line)
        times.append(out["done"] - go)
        reports.append(out["report"])
        cpu += out["cpu_s"]
        registry_bytes += out.get("registry_bytes", 0)
    for proc in procs:
        if proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.close()
        proc.wait(timeout=30)
    return {
        "times": times,
        "reports": reports,
        "killed": len(killed),
        "killed_urls": [urls[i] for i in killed],
        "registry_bytes": registry_bytes,
        "cpu_s": cpu,
    }


def _start_registry(binary: str, work: str) -> tuple[str, subprocess.Popen[bytes]]:
    addr = f"127.0.0.1:{free_port()}"
    config = os.path.join(work, "registry.yml")
    with open(config, "w") as f:
        f.write(
            f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {work}/registry\nhttp:\n  addr: {addr}\n"
        )
    proc = subprocess.Popen([binary, "serve", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            if httpx.get(f"http://{addr}/v2/", timeout=1).status_code == 200:
                return addr, proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{binary} did not start")


def _start_tracker() -> tuple[str, Any]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(standalone_app(TrackerState()), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return f"http://127.0.0.1:{port}/p2p", stop


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def _log(msg: str) -> None:
    print(f"[p2p] {msg}", file=sys.stderr, flush=True)


def _worker(conf: dict[str, Any]) -> None:
    """One peer, in its own process like an agent: ready -> wait for "go" -> fetch -> report,
    then keep serving pieces until stdin closes."""
    from sigma.p2p.download import Downloader, TrackerClient
    from sigma.p2p.peer import PeerServer

    peer = PeerServer(upload_rate=conf["cap"]).start()
    peer.corrupt = bool(conf.get("corrupt"))
    down = TokenBucket(conf["cap"])
    dest = os.path.join(conf["work"], f"{conf['mode']}-{conf['index']}")
    print(json.dumps({"ready": peer.url}), flush=True)
    sys.stdin.readline()
    if conf.get("die_at_half"):
        threading.Thread(
            target=_die_at_half, args=(peer, conf["digest"], conf["size"], conf["piece"]), daemon=True
        ).start()
    cpu0 = time.process_time()
    out: dict[str, Any] = {}
    if conf["mode"] == "registry":
        h = hashlib.sha256()
        with httpx.Client(timeout=120) as client, client.stream("GET", conf["url"]) as resp, open(dest, "wb") as f:
            for chunk in resp.iter_bytes(64 * 1024):
                down.take(len(chunk))
                h.update(chunk)
                f.write(chunk)
        if "sha256:" + h.hexdigest() != conf["digest"]:
            raise SystemExit(f"registry-only peer {conf['index']}: digest mismatch")
        out = {"report": {"failures": []}, "registry_bytes": conf["size"]}
    else:
        downloader = Downloader(TrackerClient(conf["tracker"]), peer, download=down, piece_size=conf["piece"])
        out = {"report": downloader.fetch(conf["digest"], conf["size"], conf["url"], dest).to_dict()}
    out["done"] = time.time()
    out["cpu_s"] = time.process_time() - cpu0
    print(json.dumps(out), flush=True)
    sys.stdin.read()  # serve the others until the benchmark closes our stdin
    peer.stop()


def _die_at_half(peer: Any, digest: str, size: int, piece: int) -> None:
    half = -(-size // piece) // 2
    while True:
        blob = peer.blobs.get(digest)
        if blob is not None and len(blob.have) >= half:
            os.kill(os.getpid(), signal.SIGKILL)  # like a crashed node: no goodbye to the tracker
        time.sleep(0.005)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        _worker(json.loads(sys.argv[2]))
