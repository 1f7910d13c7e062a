"""A streaming session with no byte either way for the idle timeout is closed (kubelet's
--streaming-connection-idle-timeout); one with traffic is not."""

from __future__ import annotations

import math
import socket
import threading
import time

import pytest

from sigma.agent import portforward, streaming
from sigma.agent.agent import AgentOptions
from sigma.agent.wsconn import WsConn
from sigma.api import websocket as ws


def serve_in_thread(streams: streaming.Streams, server_side: socket.socket) -> tuple[threading.Thread, WsConn]:
    conn = WsConn(server_side)
    thread = threading.Thread(target=portforward.serve, args=(conn, None, "web-0", streams.ended(conn)), daemon=True)
    thread.start()
    return thread, conn


def test_an_idle_port_forward_session_ends_after_the_idle_timeout() -> None:
    streams = streaming.Streams(node=None, find_pod=lambda ns, name: None, netns_of=lambda uid: None,
                                idle_timeout_s=0.3)
    client, server_side = socket.socketpair()
    try:
        thread, conn = serve_in_thread(streams, server_side)
        thread.join(timeout=10)
        assert not thread.is_alive(), "an idle session was kept open"
        assert conn.idle_for() > 0.3
    finally:
        client.close()
        server_side.close()


def test_a_session_with_traffic_stays_open_past_the_idle_timeout() -> None:
    streams = streaming.Streams(node=None, find_pod=lambda ns, name: None, netns_of=lambda uid: None,
                                idle_timeout_s=0.5)
    client, server_side = socket.socketpair()
    try:
        thread, _ = serve_in_thread(streams, server_side)
        # Pings (answered with pongs) every 0.1 s for three idle timeouts.
        for _ in range(15):
            client.sendall(ws.encode(ws.PING, b"k", mask=True))
            time.sleep(0.1)
        assert thread.is_alive(), "a session with traffic was closed as idle"
        thread.join(timeout=10)  # the pings stopped: now it is idle
        assert not thread.is_alive()
    finally:
        client.close()
        server_side.close()


def test_the_default_is_kubelets_four_hours() -> None:
    streams = streaming.Streams(node=None, find_pod=lambda ns, name: None, netns_of=lambda uid: None)
    assert streams.idle_timeout_s == streaming.IDLE_TIMEOUT_S == 4 * 3600


def test_a_timeout_that_is_not_positive_is_refused_naming_the_flag() -> None:
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="--streaming-connection-idle-timeout"):
            AgentOptions(streaming_idle_timeout_s=bad)
