"""The agent's end of a session socket (sigma.agent.wsconn) on a socket pair: pings, the
close handshake, and what a session writes arriving whole."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from sigma.agent.wsconn import WsConn
from sigma.api import websocket as ws


@pytest.fixture
def pair() -> Iterator[tuple[WsConn, socket.socket]]:
    ours, theirs = socket.socketpair()
    conn = WsConn(ours)
    try:
        yield conn, theirs
    finally:
        ours.close()
        theirs.close()


def receive(sock: socket.socket, count: int) -> list[ws.Message]:
    reader, out = ws.FrameReader(expect_masked=False), []
    while len(out) < count:
        data = sock.recv(65536)
        if not data:
            break
        out += reader.feed(data)
    return out


def test_a_ping_is_answered_and_messages_come_through(pair: tuple[WsConn, socket.socket]) -> None:
    conn, peer = pair
    peer.sendall(ws.encode(ws.PING, b"x", mask=True) + ws.encode(ws.BINARY, b"\x00data", mask=True))
    messages: list[ws.Message] = []
    while not messages:
        messages = conn.read()
    assert messages == [ws.Message(ws.BINARY, b"\x00data")]
    conn.flush()
    assert receive(peer, 1) == [ws.Message(ws.PONG, b"x")]


def test_finish_writes_everything_then_waits_for_the_peers_close(pair: tuple[WsConn, socket.socket]) -> None:
    conn, peer = pair
    big = b"\x01" + b"z" * (3 << 20)  # more than the socket buffers hold: the peer must read first
    conn.send(ws.BINARY, big)
    got: list[ws.Message] = []

    def client() -> None:
        got.extend(receive(peer, 2))
        peer.sendall(ws.encode(ws.CLOSE, ws.close_payload(1000), mask=True))

    thread = threading.Thread(target=client)
    thread.start()
    conn.finish(timeout=30)
    thread.join(timeout=30)
    assert got == [ws.Message(ws.BINARY, big), ws.Message(ws.CLOSE, ws.close_payload(1000))]
    assert not conn.wants_write()


def test_a_peer_that_breaks_the_protocol_ends_the_session(pair: tuple[WsConn, socket.socket]) -> None:
    conn, peer = pair
    peer.sendall(ws.encode(ws.BINARY, b"unmasked"))  # a client must mask
    while not conn.closed:
        conn.read()
    assert conn.close_sent
