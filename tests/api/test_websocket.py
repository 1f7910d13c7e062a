"""RFC 6455 framing (sigma.api.websocket): pure, no sockets."""

from __future__ import annotations

import pytest

from sigma.api import websocket as ws


def test_accept_key_is_the_rfc_example() -> None:
    assert ws.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
@pytest.mark.parametrize("masked", [True, False])
def test_frames_round_trip_at_every_length_encoding(size: int, masked: bool) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    frame = ws.encode(ws.BINARY, payload, mask=masked)
    assert (frame[1] & 0x80 != 0) == masked
    assert ws.FrameReader(expect_masked=masked).feed(frame) == [ws.Message(ws.BINARY, payload)]


def test_a_frame_fed_byte_by_byte_comes_out_once_whole() -> None:
    reader = ws.FrameReader(expect_masked=True)
    frame = ws.encode(ws.TEXT, b"hello", mask=True)
    out = [m for b in frame for m in reader.feed(bytes([b]))]
    assert out == [ws.Message(ws.TEXT, b"hello")]


def test_fragments_are_joined_and_a_ping_between_them_comes_at_once() -> None:
    data = (ws.encode(ws.BINARY, b"ab", mask=True, fin=False) + ws.encode(ws.PING, b"p", mask=True)
            + ws.encode(ws.CONTINUATION, b"cd", mask=True))
    assert ws.FrameReader(expect_masked=True).feed(data) == [ws.Message(ws.PING, b"p"),
                                                             ws.Message(ws.BINARY, b"abcd")]


@pytest.mark.parametrize(("data", "code"), [
    (ws.encode(ws.BINARY, b"x"), 1002),  # a client must mask
    (bytes([0x80 | ws.PING, 0x80 | 126, 0, 200]) + b"\0" * 4 + b"x" * 200, 1002),  # a control frame over 125
    (bytes([0x80 | 0x40 | ws.BINARY, 0x80]) + b"\0" * 4, 1002),  # a reserved bit
    (ws.encode(ws.CONTINUATION, b"x", mask=True), 1002),  # nothing to continue
    (bytes([0x80 | 0x3, 0x80]) + b"\0" * 4, 1002),  # an unknown opcode
])
def test_protocol_errors_carry_their_close_code(data: bytes, code: int) -> None:
    with pytest.raises(ws.ProtocolError) as err:
        ws.FrameReader(expect_masked=True).feed(data)
    assert err.value.code == code


def test_a_message_over_the_limit_is_1009() -> None:
    reader = ws.FrameReader(expect_masked=False, max_message=10)
    with pytest.raises(ws.ProtocolError) as err:
        reader.feed(ws.encode(ws.BINARY, b"x" * 11))
    assert err.value.code == 1009
    fragments = ws.encode(ws.BINARY, b"x" * 6, fin=False) + ws.encode(ws.CONTINUATION, b"x" * 6)
    with pytest.raises(ws.ProtocolError):
        ws.FrameReader(expect_masked=False, max_message=10).feed(fragments)


def test_a_server_refuses_masked_frames_from_a_server() -> None:
    with pytest.raises(ws.ProtocolError, match="must not be masked"):
        ws.FrameReader(expect_masked=False).feed(ws.encode(ws.BINARY, b"x", mask=True))


def test_close_payload_and_code() -> None:
    assert ws.close_code(ws.close_payload(1011, "why")) == 1011
    assert ws.close_code(b"") == 1005
    assert len(ws.close_payload(1000, "x" * 500)) == 122  # a control frame's payload stays under 126
