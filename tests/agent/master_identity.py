"""Talking to an agent's HTTP server as the master does: https with the master's client
certificate (system:sigma-master in system:masters), which `sigma master` issues at start
in STATE/auth/agent-client-HOST.{crt,key}."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx


def master_identity(state: Path, host: str = "127.0.0.1") -> tuple[str, str]:
    auth = state / "auth"
    return str(auth / f"agent-client-{host}.crt"), str(auth / f"agent-client-{host}.key")


def unverified(cert: tuple[str, str] | None = None) -> ssl.SSLContext:
    """A client context that presents ``cert`` and does not check the agent's certificate
    (self-signed and pinned by its Node: these tests read the agent they started)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        context.load_cert_chain(*cert)
    return context


def as_master(state: Path, host: str = "127.0.0.1") -> httpx.Client:
    return httpx.Client(verify=unverified(master_identity(state, host)), timeout=10)
