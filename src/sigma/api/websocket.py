"""RFC 6455 WebSocket framing, pure: bytes in, frames out; frames in, bytes out.

Both ends of Sigma's streaming subresources use it: the master's WebSocket server (kubectl
exec, attach, port-forward, cp) and its connection to the agent (where the master is the
client, so its frames are masked), and the agent's server. No I/O here.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from dataclasses import dataclass

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CONTROL = frozenset({CLOSE, PING, PONG})
MAX_MESSAGE = 16 * 1024 * 1024  # a larger message is a protocol error (1009), not memory spent


class ProtocolError(ValueError):
    """The peer broke RFC 6455; ``code`` is the close code to answer with."""

    def __init__(self, message: str, code: int = 1002) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Message:
    opcode: int  # TEXT, BINARY, CLOSE, PING or PONG (a fragmented message arrives whole)
    data: bytes


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def _mask(data: bytes, key: bytes) -> bytes:
    if not data:
        return data
    # XOR with the 4-byte key repeated, as one big integer operation (fast in CPython).
    repeated = (key * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(data), "big")


def encode(opcode: int, data: bytes, mask: bool = False, fin: bool = True) -> bytes:
    """One frame. A client masks (``mask=True``), a server never does."""
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(data)
    bit = 0x80 if mask else 0
    if size < 126:
        head += bytes([bit | size])
    elif size < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    if mask:
        key = os.urandom(4)
        return head + key + _mask(data, key)
    return head + data


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()[:120]


class FrameReader:
    """Incremental decoder: ``feed`` bytes as they arrive, get whole messages back.

    ``expect_masked``: a server requires masked frames (RFC 6455 5.1), a client refuses them.
    Fragments are joined; control frames may come between them and are returned at once."""

    def __init__(self, expect_masked: bool, max_message: int = MAX_MESSAGE) -> None:
        self.expect_masked, self.max_message = expect_masked, max_message
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._fragment_size = 0

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        out: list[Message] = []
        while (frame := self._next_frame()) is not None:
            message = self._assemble(*frame)
            if message is not None:
                out.append(message)
        return out

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        buf = self._buffer
        if len(buf) < 2:
            return None
        fin, rsv, opcode = bool(buf[0] & 0x80), buf[0] & 0x70, buf[0] & 0x0F
        masked, size, at = bool(buf[1] & 0x80), buf[1] & 0x7F, 2
        if rsv:
            raise ProtocolError("reserved bits set without a negotiated extension")
        if masked != self.expect_masked:
            raise ProtocolError("client frames must be masked" if self.expect_masked
                                else "server frames must not be masked")
        if size == 126:
            if len(buf) < 4:
                return None
            size, at = struct.unpack_from("!H", buf, 2)[0], 4
        elif size == 127:
            if len(buf) < 10:
                return None
            size, at = struct.unpack_from("!Q", buf, 2)[0], 10
        if opcode in CONTROL and (size > 125 or not fin):
            raise ProtocolError("a control frame must be whole and at most 125 bytes")
        if size > self.max_message:
            raise ProtocolError(f"a frame of {size} bytes is larger than {self.max_message}", 1009)
        key = b""
        if masked:
            if len(buf) < at + 4:
                return None
            key, at = bytes(buf[at:at + 4]), at + 4
        if len(buf) < at + size:
            return None
        payload = bytes(buf[at:at + size])
        del buf[:at + size]
        return fin, opcode, _mask(payload, key) if masked else payload

    def _assemble(self, fin: bool, opcode: int, payload: bytes) -> Message | None:
        if opcode in CONTROL:
            return Message(opcode, payload)
        if opcode == CONTINUATION:
            if not self._fragments:
                raise ProtocolError("a continuation frame without a message to continue")
        elif opcode in (TEXT, BINARY):
            if self._fragments:
                raise ProtocolError("a new message began before the last one ended")
            self._fragment_opcode = opcode
        else:
            raise ProtocolError(f"unknown opcode {opcode}")
        self._fragments.append(payload)
        self._fragment_size += len(payload)
        if self._fragment_size > self.max_message:
            raise ProtocolError(f"a message larger than {self.max_message} bytes", 1009)
        if not fin:
            return None
        data = b"".join(self._fragments)
        self._fragments, self._fragment_size = [], 0
        return Message(self._fragment_opcode, data)


def close_code(payload: bytes) -> int:
    """The code of a CLOSE frame's payload (1005: none given)."""
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
