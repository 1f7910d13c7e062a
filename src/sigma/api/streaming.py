"""pods/exec, pods/attach, pods/portforward: the master takes kubectl's WebSocket and relays it,
message for message, to the agent on the pod's node, which runs the command or connects
the port (sigma.agent.streaming).

kubectl 1.37 speaks WebSocket: `v5.channel.k8s.io` (or v4) for exec and attach, and for
port-forward SPDY/3.1 tunnelled in WebSocket binary messages
(`SPDY/3.1+portforward.k8s.io`, KEP-4006). The master does not look inside the messages: it
checks and authorises the request (the auth middleware: verb `create` on the subresource,
audited), chooses the subprotocol, then opens the agent's endpoint as pods/log does
(sigma.api.logs: an address and port the Node publishes, checked again; TLS with the
master's client certificate; the agent's certificate must be the one its Node pins) and
upgrades that connection to WebSocket with the same subprotocol.

An old-style SPDY upgrade (`Upgrade: SPDY/3.1`, which kubectl sends when the WebSocket
upgrade failed) gets the same checks, then a 400 that says WebSocket is required.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import Response

from sigma.api import errors
from sigma.api import websocket as ws
from sigma.api.auth.certs import CertPair
from sigma.api.logs import PODS, AgentEndpoint, agent_endpoint, client_context
from sigma.api.registry import Registry
from sigma.api.responses import JSON
from sigma.api.streaming_checks import PlainError, StreamPlan, choose_protocol, plan

log = logging.getLogger("sigma.api.streaming")

CONNECT_TIMEOUT_S = 10.0
HEAD_LIMIT = 64 * 1024
WEBSOCKET_REQUIRED = ("Sigma serves exec, attach and port-forward over WebSocket only (v5.channel.k8s.io, "
                      "v4.channel.k8s.io, SPDY/3.1+portforward.k8s.io); SPDY upgrades are not supported: "
                      "use kubectl 1.30 or newer")


def _query(scope_or_request: Any) -> dict[str, list[str]]:
    raw = scope_or_request.get("query_string") or b""
    return parse_qs(bytes(raw).decode("latin-1"), keep_blank_values=True)


def _plan(registry: Registry, namespace: str, name: str, sub: str, query: dict[str, list[str]]) -> StreamPlan:
    pod = registry.get(PODS, namespace, name)
    return plan(pod, sub, query)


async def refuse_spdy(registry: Registry, request: Request, namespace: str, name: str, sub: str,
                      identity: CertPair | None) -> Response:
    """A plain HTTP request on a streaming subresource: the checks, then why it cannot go on.
    kubectl sends one after its WebSocket attempt failed and prints this answer, not the
    first: so an agent that cannot be reached is reported as such, not as a protocol matter."""
    try:
        p = _plan(registry, namespace, name, sub, _query(request.scope))
        if identity is not None:
            await _probe(registry, identity, p.node)
    except PlainError as err:
        return Response(err.message, status_code=err.code, media_type="text/plain")
    raise errors.bad_request(WEBSOCKET_REQUIRED)


async def _deny(send: Any, code: int, body: bytes, content_type: bytes) -> None:
    await send({"type": "websocket.http.response.start", "status": code,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "websocket.http.response.body", "body": body})


async def deny_error(send: Any, err: Exception) -> None:
    if isinstance(err, PlainError):
        await _deny(send, err.code, err.message.encode(), b"text/plain; charset=utf-8")
    elif isinstance(err, errors.ApiError):
        response = JSON(err.status(), status_code=err.code)
        await _deny(send, err.code, bytes(response.body), b"application/json")


class AgentSocket:
    """The master's WebSocket client connection to an agent (masked frames)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rest: bytes) -> None:
        self.reader, self.writer = reader, writer
        self.frames = ws.FrameReader(expect_masked=False)
        self.pending = self.frames.feed(rest) if rest else []

    async def next_messages(self) -> list[ws.Message]:
        if self.pending:
            out, self.pending = self.pending, []
            return out
        data = await self.reader.read(65536)
        if not data:
            return [ws.Message(ws.CLOSE, ws.close_payload(1006))]
        return self.frames.feed(data)

    async def send(self, opcode: int, data: bytes) -> None:
        self.writer.write(ws.encode(opcode, data, mask=True))
        await self.writer.drain()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


async def _connect(registry: Registry, identity: CertPair, node: str) -> tuple[
        AgentEndpoint, asyncio.StreamReader, asyncio.StreamWriter]:
    """A TLS connection to the node's agent, its certificate the one its Node pins (else 503)."""
    endpoint = agent_endpoint(registry, node)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(endpoint.host, endpoint.port, ssl=client_context(identity),
                                    server_hostname="", limit=HEAD_LIMIT * 2), CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as err:
        raise errors.ApiError(503, "ServiceUnavailable", f"node {node} has an unreachable agent: {err}") from err
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der or hashlib.sha256(der).hexdigest() != endpoint.cert_sha256:
        writer.close()
        raise errors.ApiError(503, "ServiceUnavailable",
                              f"node {node} answered with a certificate other than the one its Node publishes")
    return endpoint, reader, writer


async def _probe(registry: Registry, identity: CertPair, node: str) -> None:
    _, _, writer = await _connect(registry, identity, node)
    writer.close()


async def open_agent(registry: Registry, identity: CertPair, p: StreamPlan, protocol: str) -> AgentSocket:
    """Upgrade a connection to the agent; PlainError or ApiError with its refusal."""
    endpoint, reader, writer = await _connect(registry, identity, p.node)
    key = ws.new_key()
    target = endpoint.url(*p.agent_path).split("/", 3)[3]
    request = (f"GET /{target}?{urlencode(p.query)} HTTP/1.1\r\nHost: {endpoint.host}:{endpoint.port}\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n")
    writer.write(request.encode())
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT_S)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, TimeoutError) as err:
        writer.close()
        raise errors.ApiError(503, "ServiceUnavailable", f"node {p.node}: the agent did not upgrade: {err}") from err
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
    code = int(status_line.split(" ")[1]) if len(status_line.split(" ")) > 1 and \
        status_line.split(" ")[1].isdigit() else 502
    if code != 101:
        length = int(headers.get("content-length", "0") or 0)
        body = b""
        with contextlib.suppress(Exception):
            body = await asyncio.wait_for(reader.readexactly(min(length, 4096)), CONNECT_TIMEOUT_S)
        writer.close()
        # The agent refusing the master is the master's problem, not the caller's credentials.
        raise PlainError(503 if code in (401, 403) else code, body.decode(errors="replace").strip()[:2048])
    if headers.get("sec-websocket-accept") != ws.accept_key(key):
        writer.close()
        raise errors.ApiError(503, "ServiceUnavailable", f"node {p.node}: the agent's upgrade was malformed")
    return AgentSocket(reader, writer, b"")


async def relay(receive: Any, send: Any, agent: AgentSocket) -> None:
    """Messages both ways until either side closes; then the other side is closed too."""

    async def from_client() -> None:
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                with contextlib.suppress(Exception):
                    await agent.send(ws.CLOSE, ws.close_payload(1000))
                return
            if event.get("bytes") is not None:
                await agent.send(ws.BINARY, event["bytes"])
            elif event.get("text") is not None:
                await agent.send(ws.TEXT, event["text"].encode())

    async def from_agent() -> None:
        while True:
            for message in await agent.next_messages():
                if message.opcode == ws.CLOSE:
                    code = ws.close_code(message.data)
                    await send({"type": "websocket.close", "code": 1000 if code in (1005, 1006) else code})
                    return
                if message.opcode == ws.PING:
                    await agent.send(ws.PONG, message.data)
                elif message.opcode == ws.BINARY:
                    await send({"type": "websocket.send", "bytes": message.data})
                elif message.opcode == ws.TEXT:
                    await send({"type": "websocket.send", "text": message.data.decode("utf-8", "replace")})

    tasks = [asyncio.ensure_future(from_client()), asyncio.ensure_future(from_agent())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        agent.close()


async def serve_websocket(registry: Registry, identity: CertPair | None, namespace: str, name: str, sub: str,
                          scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    """The whole life of one kubectl exec/attach/port-forward WebSocket."""
    await receive()  # websocket.connect
    try:
        p = _plan(registry, namespace, name, sub, _query(scope))
        protocol = choose_protocol(sub, list(scope.get("subprotocols") or []))
        if protocol is None:
            raise errors.bad_request(f"none of the offered subprotocols {scope.get('subprotocols')} is supported "
                                     f"for pods/{sub}")
        if identity is None:
            raise errors.ApiError(503, "ServiceUnavailable", f"node {p.node} cannot be reached: this master has "
                                  "no client certificate for agents")
        agent = await open_agent(registry, identity, p, protocol)
    except (errors.ApiError, PlainError) as err:
        await deny_error(send, err)
        return
    await send({"type": "websocket.accept", "subprotocol": protocol})
    await relay(receive, send, agent)


async def serve_api_websocket(api: Any, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    """A WebSocket on an API path: the streaming subresources of pods serve it; anything else
    is refused as kube-apiserver refuses it (404 for an unknown path, 400 otherwise)."""
    from sigma.api.server import parse_path

    parts = [p for p in scope["path"].rstrip("/").split("/") if p]
    target = None
    if len(parts) >= 3 and parts[0] == "api":
        target = parse_path(["", *parts[1:]])
    elif len(parts) >= 4 and parts[0] == "apis":
        target = parse_path(parts[1:])
    if target is None:
        await receive()
        await deny_error(send, errors.ApiError(404, "NotFound", "the server could not find the requested resource"))
        return
    if target.rt.plural != "pods" or target.sub not in ("exec", "attach", "portforward") or not target.name:
        await receive()
        await deny_error(send, errors.bad_request(f"{target.rt.plural}/{target.sub or ''} does not serve WebSocket "
                                                  "requests"))
        return
    await serve_websocket(api.registry, api.agent_client_identity, target.namespace or "", target.name, target.sub,
                          scope, receive, send)
