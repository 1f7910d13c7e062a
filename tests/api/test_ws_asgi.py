"""The request head the WebSocket protocol parses (sigma.api.ws_asgi): pure."""

from __future__ import annotations

import pytest

from sigma.api.ws_asgi import header, parse_head, subprotocols_of


def test_a_head_is_parsed_with_lowercased_names_and_every_offered_protocol() -> None:
    method, target, headers = parse_head(b"GET /api/v1/x?command=a&command=b HTTP/1.1\r\nHost: h\r\n"
                                         b"Sec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io\r\n"
                                         b"Sec-WebSocket-Protocol: channel.k8s.io\r\nSec-WebSocket-Key: k==\r\n")
    assert (method, target) == ("GET", "/api/v1/x?command=a&command=b")
    assert header(headers, b"sec-websocket-key") == "k=="
    assert header(headers, b"absent") == ""
    assert subprotocols_of(headers) == ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"]


@pytest.mark.parametrize("head", [b"GET /\r\nHost: h", b"GET / HTTP/1.1\r\nno colon here"])
def test_malformed_heads_are_refused(head: bytes) -> None:
    with pytest.raises(ValueError):
        parse_head(head)
