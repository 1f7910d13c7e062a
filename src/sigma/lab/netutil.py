"""Small network helpers shared by the launchers of local processes."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel says is free now (another process may take it before it is used;
    the launchers retry or fail loudly)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
