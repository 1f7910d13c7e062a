"""The part of SPDY/3.1 that kubectl port-forward speaks inside its WebSocket tunnel
(`SPDY/3.1+portforward.k8s.io`), pure: bytes in, frames out, and back.

Frames (draft-mbelshe-httpbis-spdy-00, version 3): a control frame is
``1 | version(15) | type(16) | flags(8) | length(24) | data``, a data frame
``0 | stream-id(31) | flags(8) | length(24) | data`` (flag 0x01 FIN). Used here: SYN_STREAM
(1: stream-id, associated-id, priority, slot, header block), SYN_REPLY (2), RST_STREAM (3),
SETTINGS (4), PING (6), GOAWAY (7), HEADERS (8), WINDOW_UPDATE (9). Header blocks are
``count(32)`` then ``len(32) name len(32) value`` pairs, zlib-compressed with one stream per
direction per session, primed with the dictionary of the specification (a shared history,
so the decompressor and compressor live as long as the session).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
MAX_FRAME = 4 * 1024 * 1024  # kubectl writes at most 32 KiB at a time
RST_PROTOCOL_ERROR, RST_INVALID_STREAM, RST_REFUSED_STREAM, RST_CANCEL = 1, 2, 3, 5

_WORDS = ("options head post put delete trace accept accept-charset accept-encoding accept-language "
          "accept-ranges age allow authorization cache-control connection content-base content-encoding "
          "content-language content-length content-location content-md5 content-range content-type date etag "
          "expect expires from host if-match if-modified-since if-none-match if-range if-unmodified-since "
          "last-modified location max-forwards pragma proxy-authenticate proxy-authorization range referer "
          "retry-after server te trailer transfer-encoding upgrade user-agent vary via warning www-authenticate "
          "method get status")
_WORDS_AFTER = "version HTTP/1.1 url public set-cookie keep-alive origin"
_TAIL = ("100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
         "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
         "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
         "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
         "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
         "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")


def _dictionary() -> bytes:
    """The SPDY/3 header dictionary: length-prefixed words, then a run of plain text."""
    words = [*_WORDS.split(), "200 OK", *_WORDS_AFTER.split()]
    return b"".join(struct.pack("!I", len(w)) + w.encode() for w in words) + _TAIL.encode()


DICTIONARY = _dictionary()


class SpdyError(ValueError):
    pass


@dataclass(frozen=True)
class Frame:
    kind: int  # 0 for DATA, else the control frame type
    flags: int
    stream_id: int = 0
    data: bytes = b""  # DATA's payload, or the control frame's raw body
    headers: dict[str, str] = field(default_factory=dict)  # SYN_STREAM, SYN_REPLY, HEADERS
    value: int = 0  # RST_STREAM and GOAWAY status, PING id, WINDOW_UPDATE delta

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


def encode_headers(headers: dict[str, str]) -> bytes:
    out = struct.pack("!I", len(headers))
    for name, value in headers.items():
        n, v = name.lower().encode(), value.encode()
        out += struct.pack("!I", len(n)) + n + struct.pack("!I", len(v)) + v
    return out


def decode_headers(block: bytes) -> dict[str, str]:
    try:
        (count,), at = struct.unpack_from("!I", block), 4
        headers: dict[str, str] = {}
        for _ in range(count):
            (size,) = struct.unpack_from("!I", block, at)
            name, at = block[at + 4:at + 4 + size].decode(), at + 4 + size
            (size,) = struct.unpack_from("!I", block, at)
            value, at = block[at + 4:at + 4 + size].decode(), at + 4 + size
            headers[name] = value.split("\0")[0]  # several values: the first is enough here
            if at > len(block):
                raise SpdyError("a header block shorter than it says")
    except (struct.error, UnicodeDecodeError) as err:
        raise SpdyError(f"a malformed header block: {err}") from err
    return headers


class Reader:
    """Incremental frame decoder with the session's header decompressor."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= 8:
            first, length = struct.unpack_from("!II", self._buffer)
            flags, length = length >> 24, length & 0xFFFFFF
            if length > MAX_FRAME:
                raise SpdyError(f"a frame of {length} bytes")
            if len(self._buffer) < 8 + length:
                break
            body = bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            if first & 0x80000000:
                version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
                if version != VERSION:
                    raise SpdyError(f"SPDY version {version}; only 3 is spoken")
                frames.append(self._control(kind, flags, body))
            else:
                frames.append(Frame(0, flags, first & 0x7FFFFFFF, body))
        return frames

    def _block(self, compressed: bytes) -> dict[str, str]:
        try:
            return decode_headers(self._inflate.decompress(compressed))
        except zlib.error as err:
            raise SpdyError(f"header block: {err}") from err

    def _control(self, kind: int, flags: int, body: bytes) -> Frame:
        try:
            if kind == SYN_STREAM:
                (sid,) = struct.unpack_from("!I", body)
                return Frame(kind, flags, sid & 0x7FFFFFFF, headers=self._block(body[10:]))
            if kind in (SYN_REPLY, HEADERS):
                (sid,) = struct.unpack_from("!I", body)
                return Frame(kind, flags, sid & 0x7FFFFFFF, headers=self._block(body[4:]))
            if kind in (RST_STREAM, WINDOW_UPDATE):
                sid, value = struct.unpack_from("!II", body)
                return Frame(kind, flags, sid & 0x7FFFFFFF, value=value & 0x7FFFFFFF)
            if kind == PING:
                return Frame(kind, flags, value=struct.unpack_from("!I", body)[0])
            if kind == GOAWAY:
                sid, status = struct.unpack_from("!II", body)
                return Frame(kind, flags, sid & 0x7FFFFFFF, value=status)
        except struct.error as err:
            raise SpdyError(f"a control frame of type {kind} too short") from err
        return Frame(kind, flags, data=body)  # SETTINGS and others: kept raw, not acted on


class Writer:
    """Frame encoder with the session's header compressor."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(zdict=DICTIONARY)

    def _control(self, kind: int, flags: int, body: bytes) -> bytes:
        return struct.pack("!HHI", 0x8000 | VERSION, kind, (flags << 24) | len(body)) + body

    def _block(self, headers: dict[str, str]) -> bytes:
        return self._deflate.compress(encode_headers(headers)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def syn_stream(self, stream_id: int, headers: dict[str, str], fin: bool = False) -> bytes:
        body = struct.pack("!IIBB", stream_id, 0, 0, 0) + self._block(headers)
        return self._control(SYN_STREAM, FLAG_FIN if fin else 0, body)

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, fin: bool = False) -> bytes:
        return self._control(SYN_REPLY, FLAG_FIN if fin else 0,
                             struct.pack("!I", stream_id) + self._block(headers or {}))

    def rst_stream(self, stream_id: int, status: int) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack("!II", stream_id, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack("!I", ping_id))

    def goaway(self, last_stream: int, status: int = 0) -> bytes:
        return self._control(GOAWAY, 0, struct.pack("!II", last_stream, status))

    def window_update(self, stream_id: int, delta: int) -> bytes:
        return self._control(WINDOW_UPDATE, 0, struct.pack("!II", stream_id, delta))

    @staticmethod
    def data(stream_id: int, payload: bytes, fin: bool = False) -> bytes:
        return struct.pack("!II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(payload)) + payload
