"""The demo's prod service: `python -m sigma.demo.web`, a tiny HTTP server.

On the host's network two replicas on one node cannot share a port: PORT=0 takes a free
one, and the first log line says which (`kubectl logs` shows it). With the pod network each
replica has its own address: HOST=0.0.0.0 PORT=8080, behind the Service demo-web. GET /
answers with the pod's name and a request count.

The load the demo offers the service is a compressed day (LOAD_TIME_SCALE, e.g. 360: a day
in four minutes) with a rush (LOAD_SPIKE_START, a wall-clock Unix time; LOAD_SPIKE_SECONDS
and LOAD_SPIKE_MULTIPLIER, on the compressed clock). With LOAD_METRICS_PORT set, every
replica serves it as a Prometheus gauge on that port, bound with SO_REUSEPORT: replicas on
one host share the port, each answers the same value (the load is a function of the time),
and the PredictiveScaler scrapes the endpoint once.

With DEMO_ROLE=load the same module is the demo's traffic instead: it sends real GET
requests to LOAD_TARGET (the Service demo-web) at LOAD_SEND_FRACTION of the offered load,
and every five seconds prints how many each replica answered (`kubectl logs` of demo-load),
so the day, the rush and the replicas the scaler adds can be watched as traffic.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import sys
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

DAY = 86400.0


def offered_load(wall_ts: float, time_scale: float, base: float, spike_start: float, spike_s: float,
                 spike_multiplier: float) -> float:
    """Requests/s the demo offers at wall_ts: a day (quiet at 04:00, busy at 16:00 on the
    compressed clock), x spike_multiplier during the rush. Pure: every replica agrees."""
    scaled = wall_ts * time_scale
    daily = 1.0 + 0.5 * math.sin(2 * math.pi * ((scaled % DAY) / DAY - 0.42))
    start = spike_start * time_scale
    return base * daily * (spike_multiplier if start <= scaled < start + spike_s else 1.0)


def load_from_env(wall_ts: float) -> float:
    env = os.environ
    return offered_load(wall_ts, float(env.get("LOAD_TIME_SCALE", "1")), float(env.get("LOAD_BASE_RPS", "100")),
                        float(env.get("LOAD_SPIKE_START", "0")), float(env.get("LOAD_SPIKE_SECONDS", "0")),
                        float(env.get("LOAD_SPIKE_MULTIPLIER", "1")))


class MetricsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        # Written by hand: this module runs inside a pod with the system python and only its
        # standard library (sigma.demo.podpython), where prometheus-client is not to be had.
        body = ("# TYPE demo_offered_requests_per_second gauge\n"
                f"demo_offered_requests_per_second {load_from_env(time.time()):.3f}\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class SharedPortServer(ThreadingHTTPServer):
    """Binds with SO_REUSEPORT, so every replica on the host can serve the same port."""

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class Handler(BaseHTTPRequestHandler):
    count = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        with Handler.lock:
            Handler.count += 1
            n = Handler.count
        body = f"hello from {socket.gethostname()} (request {n})\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would drown the log


def send_load(target: str, fraction: float, report_s: float = 5.0) -> None:
    """GET `target` at `fraction` of the offered load, for ever; a report every report_s."""
    answered: Counter[str] = Counter()
    failed, mark = 0, time.time()
    while True:
        second = time.time()
        count = max(1, round(load_from_env(second) * fraction))
        for i in range(count):
            try:
                with urllib.request.urlopen(target, timeout=1.0) as response:
                    words = response.read().decode(errors="replace").split()
                answered[words[2] if len(words) > 2 else "?"] += 1
            except OSError:
                failed += 1
            time.sleep(max(0.0, second + (i + 1) / count - time.time()))
        if time.time() - mark >= report_s:
            replicas = ", ".join(f"{name} {n}" for name, n in sorted(answered.items())) or "none"
            print(f"offered {load_from_env(time.time()):.0f} rps, sending {count}/s: answered by {replicas}; "
                  f"failed {failed}", flush=True)
            answered, failed, mark = Counter(), 0, time.time()


def main() -> int:
    if os.environ.get("DEMO_ROLE") == "load":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 of its pid namespace
        send_load(os.environ.get("LOAD_TARGET", "http://demo-web/"), float(os.environ.get("LOAD_SEND_FRACTION", "0.1")))
        return 0
    server = ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "0"))), Handler)
    print(f"demo-web listening on http://{server.server_name}:{server.server_port}/", flush=True)

    servers = [server]
    metrics_port = os.environ.get("LOAD_METRICS_PORT")
    if metrics_port:
        metrics_host = os.environ.get("LOAD_METRICS_HOST", "127.0.0.1")
        metrics = SharedPortServer((metrics_host, int(metrics_port)), MetricsHandler)
        threading.Thread(target=metrics.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        servers.append(metrics)
        print(f"demo-web load metric on http://{metrics_host}:{metrics_port}/metrics", flush=True)

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever, which runs in this thread: ask from another.
        for s in servers:
            threading.Thread(target=s.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.2)
    for s in servers:
        s.server_close()
    print("demo-web stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
