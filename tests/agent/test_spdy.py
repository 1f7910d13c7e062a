"""SPDY/3.1 framing (sigma.agent.spdy): pure, no sockets."""

from __future__ import annotations

import struct
import zlib

import pytest

from sigma.agent import spdy


def test_the_dictionary_is_the_specifications() -> None:
    d = spdy.DICTIONARY
    assert len(d) == 1423  # kV3DictionarySize
    assert d.startswith(b"\0\0\0\x07options\0\0\0\x04head\0\0\0\x04post")
    assert b"\0\0\0\x06200 OK\0\0\0\x07version\0\0\0\x08HTTP/1.1" in d
    assert d.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")


def test_header_blocks_share_one_compression_context_per_direction() -> None:
    writer, reader = spdy.Writer(), spdy.Reader()
    first = writer.syn_stream(1, {"streamType": "error", "port": "8080", "requestID": "0"})
    second = writer.syn_stream(3, {"streamType": "data", "port": "8080", "requestID": "0"})
    frames = reader.feed(first + second)
    assert [(f.kind, f.stream_id, f.headers) for f in frames] == [
        (spdy.SYN_STREAM, 1, {"streamtype": "error", "port": "8080", "requestid": "0"}),
        (spdy.SYN_STREAM, 3, {"streamtype": "data", "port": "8080", "requestid": "0"})]
    # The second block refers back to the first: a fresh reader cannot decode it alone.
    with pytest.raises(spdy.SpdyError):
        spdy.Reader().feed(second)


def test_a_header_block_is_zlib_with_the_dictionary() -> None:
    frame = spdy.Writer().syn_reply(5, {"a": "b"})
    block = frame[12:]
    inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)
    assert spdy.decode_headers(inflate.decompress(block)) == {"a": "b"}
    assert frame[:4] == struct.pack("!HH", 0x8003, spdy.SYN_REPLY)


def test_data_and_control_frames_round_trip_and_split_anywhere() -> None:
    writer = spdy.Writer()
    stream = (writer.data(3, b"hello") + writer.data(3, b"", fin=True) + writer.rst_stream(3, spdy.RST_CANCEL)
              + writer.ping(7) + writer.goaway(9) + writer.window_update(3, 1000))
    reader = spdy.Reader()
    frames = [f for i in range(0, len(stream), 5) for f in reader.feed(stream[i:i + 5])]
    assert [(f.kind, f.stream_id, f.data, f.fin, f.value) for f in frames] == [
        (0, 3, b"hello", False, 0), (0, 3, b"", True, 0), (spdy.RST_STREAM, 3, b"", False, spdy.RST_CANCEL),
        (spdy.PING, 0, b"", False, 7), (spdy.GOAWAY, 9, b"", False, 0), (spdy.WINDOW_UPDATE, 3, b"", False, 1000)]


def test_settings_are_kept_raw() -> None:
    body = struct.pack("!I", 1) + struct.pack("!II", 7, 65536)
    frame = struct.pack("!HHI", 0x8003, spdy.SETTINGS, len(body)) + body
    assert spdy.Reader().feed(frame) == [spdy.Frame(spdy.SETTINGS, 0, data=body)]


@pytest.mark.parametrize("frame", [
    struct.pack("!HHI", 0x8002, spdy.PING, 4) + b"\0\0\0\1",  # SPDY/2
    struct.pack("!HHI", 0x8003, spdy.PING, 2) + b"\0\0",  # too short
    struct.pack("!II", 1, 0xFFFFFF),  # larger than allowed
])
def test_bad_frames_are_errors(frame: bytes) -> None:
    with pytest.raises(spdy.SpdyError):
        spdy.Reader().feed(frame + b"\0" * 8)


def test_malformed_header_blocks_are_errors() -> None:
    with pytest.raises(spdy.SpdyError):
        spdy.decode_headers(struct.pack("!II", 1, 50) + b"short")
