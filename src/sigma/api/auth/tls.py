"""TLS for the API server: the uvicorn settings, and the verified client certificate handed
to the app.

uvicorn does not put the peer certificate in the ASGI scope, so the HTTP protocol is
subclassed: when a connection is made, its verified certificate (ssl's getpeercert(), empty
when the client sent none) is attached to every request of that connection as
``scope["extensions"]["tls"]["peer_cert"]``.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from sigma.api.auth.certs import CertPair
from sigma.api.limits import LimitedHttpToolsProtocol


def _with_peer_cert(app: Any, cert: dict[str, Any]) -> Any:
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope.setdefault("extensions", {})["tls"] = {"peer_cert": cert}
        await app(scope, receive, send)

    return wrapped


class PeerCertProtocol(LimitedHttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        cert = transport.get_extra_info("peercert")
        if cert:
            self.app = _with_peer_cert(self.app, cert)


def uvicorn_tls_options(server: CertPair, ca: CertPair) -> dict[str, Any]:
    """Keyword arguments for uvicorn.Config: serve ``server``; verify a client certificate
    against ``ca`` when one is offered (tokens remain the other way in)."""
    return {"ssl_certfile": str(server.cert), "ssl_keyfile": str(server.key), "ssl_ca_certs": str(ca.cert),
            "ssl_cert_reqs": ssl.CERT_OPTIONAL, "http": PeerCertProtocol}
