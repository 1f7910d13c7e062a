"""The agent's HTTP endpoints, served from a thread (http.server: no event loop to share
with the agent's blocking loops, and a streamed response is just writes to a socket).

    GET /logs/NAMESPACE/POD/CONTAINER?follow=&tailLines=&previous=&timestamps=&sinceSeconds=&sinceTime=
        text/plain; with follow=true it streams until the container stops or the client
        goes away. Unknown pod or container: 404 with a sentence saying which.
    GET /metrics   Prometheus text (the collector's latest reading)
    GET /healthz   "ok"

The master's pods/log subresource proxies to /logs; it relays our status code and body, so
the messages here are what `kubectl logs` prints.

Every pod shares 127.0.0.1 with the agent and the default listener is 0.0.0.0:10250, so,
as a kubelet's, these endpoints authenticate their caller: the server speaks TLS only (a
self-generated certificate whose SHA-256 the Node publishes for the master to pin), and
/logs and /metrics answer only a client certificate signed by the cluster CA whose
organisations include system:masters (the master's own identity, system:sigma-master).
Without one: 401; with another identity: 403. /healthz stays open: it tells nothing.
The TLS handshake runs in the request's thread, so a client that stalls it holds up no one.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sigma.agent.logs import parse_since_time
from sigma.agent.servingcert import ServingCert
from sigma.api.auth.certs import user_of_peer_cert
from sigma.api.auth.identity import MASTERS

HANDSHAKE_TIMEOUT_S = 10.0

log = logging.getLogger("sigma.agent.server")

PodLookup = Callable[[str, str], "dict[str, Any] | None"]
LogReader = Callable[..., Iterator[bytes]]  # (pod, container, **options)


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True  # a follow stream must not hold up shutdown

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A failed handshake (no TLS, a certificate the CA did not sign) is the client's problem.
        log.debug("agent http: connection from %s failed", client_address, exc_info=True)


class AgentServer:
    def __init__(self, host: str, port: int, find_pod: PodLookup, read_log: LogReader,
                 metrics: Callable[[], str], serving: ServingCert, streams: Any = None) -> None:
        handler = type("Handler", (_Handler,), {"find_pod": staticmethod(find_pod),
                                                "read_log": staticmethod(read_log),
                                                "metrics": staticmethod(metrics),
                                                "streams": streams})  # exec, attach, port-forward
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.load_cert_chain(str(serving.cert), str(serving.key))
        # Optional at the TLS layer so the refusal is an HTTP 401 a client can read; a
        # certificate that is offered must chain to the cluster CA (trust_client_ca).
        self.context.verify_mode = ssl.CERT_OPTIONAL
        self.cert_sha256 = serving.sha256
        self.httpd = _TLSServer((host, port), handler)
        self.httpd.socket = self.context.wrap_socket(self.httpd.socket, server_side=True,
                                                     do_handshake_on_connect=False)
        self.port = int(self.httpd.server_address[1])
        self._thread: threading.Thread | None = None

    def trust_client_ca(self, pem: str) -> None:
        """Accept client certificates signed by this CA (the cluster's) from now on."""
        if "BEGIN CERTIFICATE" not in pem:
            raise ValueError("no certificate in the cluster CA the master sent")
        self.context.load_verify_locations(cadata=pem)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="agent-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def log_options(query: dict[str, list[str]]) -> dict[str, Any]:
    """Query parameters as NodeRuntime.logs options; a bad tailLines is a 400, not a guess."""
    def flag(name: str) -> bool:
        return (query.get(name) or ["false"])[0].lower() in ("true", "1")

    options: dict[str, Any] = {"follow": flag("follow"), "previous": flag("previous"),
                               "timestamps": flag("timestamps")}
    if "tailLines" in query:
        text = query["tailLines"][0]
        if not text.lstrip("-").isdigit():
            raise ValueError(f"tailLines must be an integer, got {text!r}")
        options["tail_lines"] = int(text)
    options.update(since_option(query))
    return options


def since_option(query: dict[str, list[str]], clock: Callable[[], float] = time.time) -> dict[str, float]:
    """sinceSeconds (relative to this node's clock) or sinceTime (RFC 3339) as read_log's
    `since`, with PodLogOptions' rules: at most one of them, sinceSeconds above 0."""
    seconds, at = query.get("sinceSeconds"), query.get("sinceTime")
    if seconds and at:
        raise ValueError("at most one of `sinceTime` or `sinceSeconds` may be specified")
    if seconds:
        if not seconds[0].lstrip("-").isdigit():
            raise ValueError(f"sinceSeconds must be an integer, got {seconds[0]!r}")
        if int(seconds[0]) < 1:
            raise ValueError(f"sinceSeconds: Invalid value: {int(seconds[0])}: must be greater than 0")
        return {"since": clock() - int(seconds[0])}
    if at:
        try:
            return {"since": parse_since_time(at[0])}
        except ValueError:
            raise ValueError(f"sinceTime must be an RFC 3339 time, got {at[0]!r}") from None
    return {}


class _Handler(BaseHTTPRequestHandler):
    find_pod: PodLookup
    read_log: LogReader
    metrics: Callable[[], str]
    streams: Any = None  # sigma.agent.streaming.Streams
    server_version = "sigma-agent"

    def setup(self) -> None:
        conn: ssl.SSLSocket = self.request
        conn.settimeout(HANDSHAKE_TIMEOUT_S)
        conn.do_handshake()
        conn.settimeout(None)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def caller_refusal(self) -> tuple[int, str] | None:
        """None when the caller is the master (a verified client certificate in
        system:masters); else the status code and message to answer with."""
        conn: ssl.SSLSocket = self.request
        peer: dict[str, object] = dict(conn.getpeercert() or {})  # verified against the cluster CA, or empty
        named = user_of_peer_cert(peer) if peer else None
        if named is None:
            return 401, "Unauthorized: the agent answers only the master's client certificate\n"
        user, groups = named
        if MASTERS not in groups:
            return 403, f'Forbidden: user "{user}" may not read from this agent\n'
        return None

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        try:
            if parts == ["healthz"]:
                self._text(200, "ok\n")
            elif (refusal := self.caller_refusal()) is not None:
                self._text(*refusal)
            elif parts == ["metrics"]:
                self._text(200, self.metrics(), "text/plain; version=0.0.4; charset=utf-8")
            elif len(parts) == 4 and parts[0] == "logs":
                self._logs(parts[1], parts[2], parts[3], parse_qs(url.query))
            elif parts[0] in ("exec", "attach", "portforward") and self.streams is not None:
                self.streams.serve(self, parts, parse_qs(url.query, keep_blank_values=True))
            else:
                self._text(404, f"no such endpoint: {url.path}\n")
        except (TimeoutError, BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the client went away (kubectl logs -f interrupted)

    def _logs(self, namespace: str, name: str, container: str, query: dict[str, list[str]]) -> None:
        pod = self.find_pod(namespace, name)
        if pod is None:
            self._text(404, f'pod "{name}" in namespace "{namespace}" is not on this node\n')
            return
        names = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        if container not in names:
            self._text(404, f"container {container} is not valid for pod {name}, choose one of: {names}\n")
            return
        try:
            options = log_options(query)
        except ValueError as err:
            self._text(400, f"{err}\n")
            return
        chunks = self.read_log(pod, container, **options)
        try:
            first = next(chunks, b"")
        except FileNotFoundError:
            what = "previous terminated container" if options["previous"] else "container"
            self._text(400, f'{what} "{container}" in pod "{name}" has no log yet (it is waiting to start)\n')
            return
        # No Content-Length and Connection: close: the body ends when the stream does.
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            if options["follow"]:
                for chunk in _chain(first, chunks):
                    self.wfile.write(chunk)  # the socket is unbuffered: each line goes out now
            else:
                self.wfile.write(first + b"".join(chunks))
        finally:
            getattr(chunks, "close", lambda: None)()  # a client that left closes the log file now

    def _text(self, code: int, body: str, content_type: str = "text/plain; charset=utf-8") -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest
