"""pods/log: the master proxies to the agent on the pod's node, which holds the log files.

The node publishes its agent's address (status.addresses InternalIP) and port
(status.daemonEndpoints.kubeletEndpoint.Port); the agent serves
GET /logs/NAMESPACE/POD/CONTAINER with the same query parameters (follow, tailLines,
previous, timestamps, sinceSeconds, sinceTime), streamed back as text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from sigma.api import errors
from sigma.api.registry import Registry
from sigma.api.resources import resource

PODS = resource("pods")
NODES = resource("nodes")


def agent_url(registry: Registry, node_name: str) -> str:
    node = registry.get(NODES, None, node_name)
    status = node.get("status") or {}
    address = next((a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), None)
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if not address or not port:
        raise errors.ApiError(503, "ServiceUnavailable", f"node {node_name} publishes no agent endpoint")
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}"


async def proxy_logs(registry: Registry, request: Request, namespace: str, name: str) -> Response:
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
    url = f"{agent_url(registry, node)}/logs/{namespace}/{name}/{container}"
    params = {k: v for k, v in request.query_params.items() if k in ("follow", "tailLines", "previous", "timestamps",
                                                                     "sinceSeconds", "sinceTime", "limitBytes")}
    client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))
    try:
        upstream = await client.send(client.build_request("GET", url, params=params), stream=True)
    except httpx.HTTPError as err:
        await client.aclose()
        raise errors.ApiError(503, "ServiceUnavailable", f"the agent on node {node} is unreachable: {err}") from err
    if upstream.status_code != 200:
        body = await upstream.aread()
        await upstream.aclose()
        await client.aclose()
        raise errors.ApiError(upstream.status_code, "BadRequest", body.decode(errors="replace").strip())

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()
            await client.aclose()

    return StreamingResponse(relay(), media_type="text/plain")
