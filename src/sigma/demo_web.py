"""The demo's prod service: `python -m sigma.demo_web`, a tiny HTTP server.

The process runtime shares the host's network, so two replicas on one node cannot share a
port: PORT=0 (the demo's setting) takes a free one, and the first log line says which
(`kubectl logs` shows it). GET / answers with the pod's name and a request count.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any


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


def main() -> int:
    server = ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "0"))), Handler)
    print(f"demo-web listening on http://{server.server_name}:{server.server_port}/", flush=True)

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever, which runs in this thread: ask from another.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.2)
    server.server_close()
    print("demo-web stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
