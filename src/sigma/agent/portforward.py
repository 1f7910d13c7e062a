"""``kubectl port-forward`` on the agent: the SPDY/3.1 session kubectl runs inside the
WebSocket tunnel (sigma.agent.spdy), served as the kubelet serves portforward.k8s.io.

For each local connection kubectl opens two streams with the headers ``streamType`` (error
or data), ``port`` and ``requestID``. Every stream gets a SYN_REPLY. The data stream is
joined to a TCP connection to 127.0.0.1:PORT inside the pod's network namespace (a thread
enters it with setns only to create and connect the socket; a pod without a namespace of
its own shares the host's); bytes go both ways with end-of-file carried as FIN. A port that
cannot be reached is a sentence on the error stream (kubectl prints it) and the end of that
pair only: the session and its other ports go on.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sigma.agent import spdy
from sigma.agent.nsutil import setns
from sigma.agent.wsconn import WsConn
from sigma.api import websocket as ws

log = logging.getLogger("sigma.agent.portforward")

CLONE_NEWNET = 0x40000000
CONNECT_TIMEOUT_S = 5.0
MAX_BACKLOG = 1 << 20


def connect_in(netns: str | None, port: int) -> socket.socket:
    """A TCP connection to 127.0.0.1:port in ``netns`` (None: this one)."""
    if netns is None:
        return socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT_S)
    result: list[Any] = []

    def enter_and_connect() -> None:  # a thread of its own: setns changes only the calling thread
        try:
            setns(netns, CLONE_NEWNET)
            result.append(socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT_S))
        except OSError as err:
            result.append(err)

    thread = threading.Thread(target=enter_and_connect, name="agent-portforward-connect", daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT_S + 1)
    if not result:
        raise TimeoutError(f"connecting to port {port} timed out")
    if isinstance(result[0], OSError):
        raise result[0]
    sock: socket.socket = result[0]
    return sock


@dataclass
class Pair:
    port: int
    error_sid: int = 0
    data_sid: int = 0
    sock: socket.socket | None = None
    to_sock: bytearray = field(default_factory=bytearray)
    client_done: bool = False  # kubectl sent FIN on the data stream
    pod_done: bool = False  # the pod's side reached end of file (FIN sent)
    error: str = ""  # to send once the error stream exists


class Session:
    def __init__(self, conn: WsConn, netns: str | None, pod_name: str,
                 connect: Callable[[str | None, int], socket.socket] = connect_in) -> None:
        self.conn, self.netns, self.pod_name, self.connect = conn, netns, pod_name, connect
        self.reader, self.writer = spdy.Reader(), spdy.Writer()
        self.pairs: dict[str, Pair] = {}
        self.by_sid: dict[int, str] = {}
        self.ended = False

    def out(self, frame: bytes) -> None:
        self.conn.send(ws.BINARY, frame)

    def on_frame(self, f: spdy.Frame) -> None:
        if f.kind == spdy.SYN_STREAM:
            self._syn(f)
        elif f.kind == 0:
            self._data(f)
        elif f.kind == spdy.RST_STREAM:
            request = self.by_sid.pop(f.stream_id, None)
            pair = self.pairs.get(request or "")
            if pair is not None and pair.data_sid == f.stream_id:
                self._drop(request or "")
        elif f.kind == spdy.PING:
            self.out(self.writer.ping(f.value))
        elif f.kind == spdy.GOAWAY:
            self.ended = True

    def _syn(self, f: spdy.Frame) -> None:
        kind, request = f.headers.get("streamtype", ""), f.headers.get("requestid", "")
        port_text = f.headers.get("port", "")
        if kind not in ("error", "data") or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            self.out(self.writer.rst_stream(f.stream_id, spdy.RST_PROTOCOL_ERROR))
            return
        self.out(self.writer.syn_reply(f.stream_id))
        pair = self.pairs.setdefault(request, Pair(int(port_text)))
        self.by_sid[f.stream_id] = request
        if kind == "error":
            pair.error_sid = f.stream_id
            self._flush_error(pair)
            return
        pair.data_sid = f.stream_id
        try:
            pair.sock = self.connect(self.netns, pair.port)
            pair.sock.setblocking(False)
        except OSError as err:
            pair.error = (f"error forwarding port {pair.port} to pod {self.pod_name}: failed to connect to "
                          f"localhost:{pair.port} inside the pod's network namespace: {err}")
            self.out(self.writer.data(pair.data_sid, b"", fin=True))
            pair.pod_done = True
            self._flush_error(pair)

    def _flush_error(self, pair: Pair) -> None:
        if pair.error and pair.error_sid:
            self.out(self.writer.data(pair.error_sid, pair.error.encode(), fin=True))
            pair.error = ""

    def _data(self, f: spdy.Frame) -> None:
        request = self.by_sid.get(f.stream_id)
        pair = self.pairs.get(request or "")
        if pair is None or f.stream_id != pair.data_sid:
            return  # the error stream carries nothing from kubectl
        if pair.sock is not None:
            pair.to_sock += f.data
        if f.fin:
            pair.client_done = True

    def _drop(self, request: str) -> None:
        pair = self.pairs.pop(request, None)
        if pair is None:
            return
        for sid in (pair.error_sid, pair.data_sid):
            self.by_sid.pop(sid, None)
        if pair.sock is not None:
            with contextlib.suppress(OSError):
                pair.sock.close()

    def pump_sockets(self, readable: list[Any], writable: list[Any]) -> None:
        for request, pair in list(self.pairs.items()):
            sock = pair.sock
            if sock is None:
                if pair.pod_done and pair.error_sid and not pair.error:
                    self._drop(request)
                continue
            if sock in writable and pair.to_sock:
                try:
                    sent = sock.send(pair.to_sock[:65536])
                    del pair.to_sock[:sent]
                except BlockingIOError:
                    pass
                except OSError:
                    pair.to_sock.clear()
            if pair.client_done and not pair.to_sock:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_WR)
            if sock in readable and not pair.pod_done:
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if chunk:
                    self.out(self.writer.data(pair.data_sid, chunk))
                else:
                    pair.pod_done = True
                    self.out(self.writer.data(pair.data_sid, b"", fin=True))
                    if pair.error_sid:
                        self.out(self.writer.data(pair.error_sid, b"", fin=True))
            if pair.pod_done and pair.client_done and not pair.to_sock:
                self._drop(request)

    def close(self) -> None:
        for request in list(self.pairs):
            self._drop(request)


def serve(conn: WsConn, netns: str | None, pod_name: str, stopping: Callable[[], bool]) -> None:
    session = Session(conn, netns, pod_name)
    try:
        while not conn.closed and not session.ended and not stopping():
            socks = [p.sock for p in session.pairs.values() if p.sock is not None]
            readers: list[Any] = [conn] + ([s for s in socks] if conn.backlog < MAX_BACKLOG else [])
            writers: list[Any] = [p.sock for p in session.pairs.values() if p.sock is not None and p.to_sock]
            if conn.wants_write():
                writers.append(conn)
            ready_r, ready_w, _ = select.select(readers, writers, [], 0 if conn.pending() else 0.2)
            if conn in ready_r or conn.pending():
                for message in conn.read():
                    if message.opcode == ws.CLOSE:
                        return
                    if message.opcode == ws.BINARY:
                        try:
                            frames = session.reader.feed(message.data)
                        except spdy.SpdyError as err:
                            log.info("port-forward to %s: %s", pod_name, err)
                            conn.close(1002, "SPDY protocol error")
                            conn.drain()
                            return
                        for frame in frames:
                            session.on_frame(frame)
            session.pump_sockets(ready_r, ready_w)
            if conn.wants_write():
                conn.flush()
    finally:
        session.close()
