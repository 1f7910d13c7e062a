"""pods/log: the master proxies to the agent on the pod's node, which holds the log files.

The node publishes its agent's address (status.addresses), port
(status.daemonEndpoints.kubeletEndpoint.Port) and the SHA-256 of its serving certificate
(annotation sigma.io/serving-cert-sha256); the agent serves
GET /logs/NAMESPACE/POD/CONTAINER with the same query parameters (follow, tailLines,
previous, timestamps, sinceSeconds, sinceTime), streamed back as text.

What a node publishes is written with a node credential, so it is not trusted here: the
URL is built from an IP address (InternalIP first) or a DNS hostname and an integer port,
never from the published strings as they are; path parts are escaped; redirects are not
followed. The connection is https: the master presents its client certificate
(system:sigma-master in system:masters, signed by the cluster CA), which the agent
requires, and the body is relayed only if the agent's certificate is the one its Node
pins.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from sigma.api import errors
from sigma.api.auth.certs import CertPair
from sigma.api.auth.identity import SERVING_CERT_ANNOTATION
from sigma.api.nodestatus_validation import address_problem, valid_port
from sigma.api.registry import Registry
from sigma.api.resources import resource

PODS = resource("pods")
NODES = resource("nodes")
ADDRESS_PREFERENCE = ("InternalIP", "ExternalIP", "Hostname", "InternalDNS", "ExternalDNS")


@dataclass(frozen=True)
class AgentEndpoint:
    host: str
    port: int
    cert_sha256: str

    def url(self, *parts: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}/" + "/".join(quote(p, safe="") for p in parts)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _unavailable(node_name: str, why: str) -> errors.ApiError:
    return errors.ApiError(503, "ServiceUnavailable", f"node {node_name} {why}")


def agent_endpoint(registry: Registry, node_name: str) -> AgentEndpoint:
    """Where the node's agent listens, from values checked again here (a Node stored before
    status validation existed may hold anything)."""
    node = registry.get(NODES, None, node_name)
    status = _object(node.get("status"))
    published = [a for a in status.get("addresses") or [] if isinstance(a, dict)]
    host = next((str(a["address"]) for kind in ADDRESS_PREFERENCE for a in published
                 if a.get("type") == kind and address_problem(kind, a.get("address")) is None), None)
    port = _object(_object(status.get("daemonEndpoints")).get("kubeletEndpoint")).get("Port")
    if host is None or not isinstance(port, int) or not valid_port(port):
        raise _unavailable(node_name, "publishes no valid agent endpoint")
    pin = ((node.get("metadata") or {}).get("annotations") or {}).get(SERVING_CERT_ANNOTATION)
    if not isinstance(pin, str) or len(pin) != 64:
        raise _unavailable(node_name, "publishes no serving certificate for its agent")
    return AgentEndpoint(host, port, pin.lower())


def client_context(identity: CertPair | None) -> ssl.SSLContext:
    """TLS to an agent: our client certificate; the agent's certificate is checked against its
    Node's pin after the handshake (it is self-signed, so there is no chain to verify)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if identity is not None:
        context.load_cert_chain(str(identity.cert), str(identity.key))
    return context


def peer_sha256(response: httpx.Response) -> str:
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return hashlib.sha256(der).hexdigest() if der else ""


async def proxy_logs(registry: Registry, request: Request, namespace: str, name: str,
                     identity: CertPair | None) -> Response:
    pod = registry.get(PODS, namespace, name)
    containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    container = request.query_params.get("container") or (containers[0] if len(containers) == 1 else "")
    if not container:
        raise errors.bad_request(f"a container name must be specified for pod {name}, choose one of: {containers}")
    if container not in containers:
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start: the pod is not '
                                 "scheduled yet")
    if identity is None:
        raise _unavailable(node, "cannot be reached: this master has no client certificate for agents")
    endpoint = agent_endpoint(registry, node)
    params = {k: v for k, v in request.query_params.items() if k in ("follow", "tailLines", "previous", "timestamps",
                                                                     "sinceSeconds", "sinceTime", "limitBytes")}
    client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None), verify=client_context(identity),
                               follow_redirects=False, trust_env=False)
    upstream: Any = None
    try:
        url = endpoint.url("logs", namespace, name, container)
        upstream = await client.send(client.build_request("GET", url, params=params), stream=True)
        if peer_sha256(upstream) != endpoint.cert_sha256:
            raise _unavailable(node, "answered with a certificate other than the one its Node publishes")
        if upstream.status_code != 200:
            body = await upstream.aread()
            # The agent refusing us is the master's problem, not the caller's credentials.
            code = 503 if upstream.status_code in (401, 403) or upstream.status_code < 400 else upstream.status_code
            raise errors.ApiError(code, "BadRequest", body.decode(errors="replace").strip()[:2048])
    except httpx.HTTPError as err:
        await client.aclose()
        raise _unavailable(node, f"has an unreachable agent: {err}") from err
    except errors.ApiError:
        if upstream is not None:
            await upstream.aclose()
        await client.aclose()
        raise

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()
            await client.aclose()

    return StreamingResponse(relay(), media_type="text/plain")
