"""The port-forward session (sigma.agent.portforward) driven frame by frame: the WebSocket
is one end of a socket pair, the pod's ports are socket pairs handed out by the connect
seam (no process, no network namespace)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from sigma.agent import spdy
from sigma.agent.portforward import Session
from sigma.agent.wsconn import WsConn
from sigma.api import websocket as ws


class Harness:
    def __init__(self) -> None:
        self.client, server = socket.socketpair()
        self.conn = WsConn(server)
        self.pods: dict[int, socket.socket] = {}  # port -> the pod's end
        self.session = Session(self.conn, None, "web", self.connect)
        self.writer, self.reader, self.frames = spdy.Writer(), spdy.Reader(), ws.FrameReader(expect_masked=False)

    def connect(self, netns: str | None, port: int) -> socket.socket:
        if port == 9999:
            raise ConnectionRefusedError(111, "Connection refused")
        ours, theirs = socket.socketpair()
        self.pods[port] = theirs
        return ours

    def send(self, frame: bytes) -> None:
        for f in self.session.reader.feed(frame):
            self.session.on_frame(f)

    def pump(self) -> list[spdy.Frame]:
        socks = [p.sock for p in self.session.pairs.values() if p.sock is not None]
        self.session.pump_sockets(socks, socks)
        self.conn.flush()
        self.client.setblocking(False)
        out: list[spdy.Frame] = []
        try:
            while True:
                for message in self.frames.feed(self.client.recv(65536)):
                    out += self.reader.feed(message.data)
        except BlockingIOError:
            pass
        return out

    def close(self) -> None:
        self.session.close()
        self.client.close()
        self.conn.sock.close()
        for s in self.pods.values():
            s.close()


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    try:
        yield harness
    finally:
        harness.close()


def test_streams_are_answered_and_bytes_go_both_ways(h: Harness) -> None:
    h.send(h.writer.syn_stream(1, {"streamType": "error", "port": "80", "requestID": "0"}))
    h.send(h.writer.syn_stream(3, {"streamType": "data", "port": "80", "requestID": "0"}))
    h.send(h.writer.data(3, b"ping"))
    frames = h.pump()
    assert [(f.kind, f.stream_id) for f in frames] == [(spdy.SYN_REPLY, 1), (spdy.SYN_REPLY, 3)]
    frames = h.pump()  # the socket was not writable in the first round: it is now
    assert h.pods[80].recv(100) == b"ping"
    h.pods[80].sendall(b"pong")
    frames = h.pump()
    assert [(f.kind, f.stream_id, f.data) for f in frames] == [(0, 3, b"pong")]
    h.pods[80].close()  # the pod's end of file: FIN on data, the error stream closed empty
    frames = h.pump()
    assert [(f.stream_id, f.data, f.fin) for f in frames] == [(3, b"", True), (1, b"", True)]


def test_a_refused_port_is_a_sentence_on_its_error_stream_and_the_session_goes_on(h: Harness) -> None:
    h.send(h.writer.syn_stream(1, {"streamType": "error", "port": "9999", "requestID": "0"}))
    h.send(h.writer.syn_stream(3, {"streamType": "data", "port": "9999", "requestID": "0"}))
    frames = h.pump()
    error = [f for f in frames if f.kind == 0 and f.stream_id == 1]
    assert error[0].fin and error[0].data.startswith(b"error forwarding port 9999 to pod web:")
    assert b"Connection refused" in error[0].data
    assert any(f.kind == 0 and f.stream_id == 3 and f.fin for f in frames)
    h.send(h.writer.syn_stream(5, {"streamType": "error", "port": "80", "requestID": "1"}))
    h.send(h.writer.syn_stream(7, {"streamType": "data", "port": "80", "requestID": "1"}))
    h.pump()
    h.pods[80].sendall(b"still here")
    assert [f.data for f in h.pump() if f.kind == 0] == [b"still here"]
    assert "0" not in h.session.pairs  # the refused pair is forgotten


def test_an_error_reported_before_its_error_stream_exists_waits_for_it(h: Harness) -> None:
    h.send(h.writer.syn_stream(3, {"streamType": "data", "port": "9999", "requestID": "0"}))
    assert not [f for f in h.pump() if f.kind == 0 and f.stream_id == 1]
    h.send(h.writer.syn_stream(1, {"streamType": "error", "port": "9999", "requestID": "0"}))
    assert next(f for f in h.pump() if f.kind == 0 and f.stream_id == 1).data.startswith(b"error forwarding")


def test_bad_streams_are_reset_pings_answered_and_a_reset_closes_the_port(h: Harness) -> None:
    h.send(h.writer.syn_stream(1, {"streamType": "data", "port": "http", "requestID": "0"}))
    h.send(h.writer.ping(42))
    frames = h.pump()
    assert [(f.kind, f.stream_id, f.value) for f in frames] == [(spdy.RST_STREAM, 1, spdy.RST_PROTOCOL_ERROR),
                                                               (spdy.PING, 0, 42)]
    h.send(h.writer.syn_stream(3, {"streamType": "data", "port": "80", "requestID": "1"}))
    h.pump()
    h.send(h.writer.rst_stream(3, spdy.RST_CANCEL))
    assert h.pods[80].recv(10) == b""  # our end was closed
    h.send(h.writer.goaway(3))
    assert h.session.ended
