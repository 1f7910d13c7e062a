"""Random (version 4) UIDs for new objects, drawn from a pool of os.urandom bytes.

uuid.uuid4() reads the kernel's random source once per UID, and CPython releases the GIL
around that read: on the API's event loop, every create then risked waiting for the GIL
behind the scheduler's threads. One read per 256 UIDs keeps the same randomness.
"""

from __future__ import annotations

import os
import threading
import uuid

_BATCH = 256
_lock = threading.Lock()
_pool = b""
_offset = 0


def _next16() -> bytes:
    global _pool, _offset
    with _lock:
        if _offset >= len(_pool):
            _pool, _offset = os.urandom(16 * _BATCH), 0
        chunk = _pool[_offset:_offset + 16]
        _offset += 16
    return chunk


def new_uid() -> str:
    return str(uuid.UUID(bytes=_next16(), version=4))


def new_uid_hex() -> str:
    return uuid.UUID(bytes=_next16(), version=4).hex
