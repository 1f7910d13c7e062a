"""The dashboard's routes on the master: the page, its static files, and its live feed.

    GET /ui, /ui/           the page (static HTML + JS + CSS shipped as package data: no build step)
    GET /ui/static/NAME     dashboard.js, dashboard.css
    GET /ui/events          Server-Sent Events: `snapshot` first, then `changes` (see hub.py)
    GET /ui/snapshot        the same snapshot as one JSON document (for scripts and tests)
    /ui/login, /ui/logout   a browser's login with a bearer token or a one-time link (login.py)

With authentication on, each user sees only what RBAC lets them list (access.py): the feed
and the snapshot are filtered per request, for the user of its token, client certificate
or dashboard session.

SSE rather than a websocket: the feed only flows one way, EventSource reconnects by itself,
and it passes through any HTTP proxy in front of the master.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from importlib import resources

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from sigma.api.auth.identity import MASTERS, User
from sigma.api.auth.middleware import AuthPolicy
from sigma.api.registry import Registry
from sigma.api.responses import JSON
from sigma.ui.access import Sees, rights, visible_changes, visible_snapshot
from sigma.ui.hub import Hub
from sigma.ui.login import login_routes

KEEPALIVE_S = 15.0  # a comment line now and then: proxies keep the stream, dead clients show up
MEDIA = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}
STATIC = ("dashboard.js", "dashboard.css")


def _asset(name: str) -> bytes:
    return resources.files("sigma.ui").joinpath("static", name).read_bytes()


def _sse(event: str, data: object) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


Rights = Callable[[], Sees | None]  # the current rights of one request's user; None: sees everything


def _rights_of(policy: AuthPolicy | None, request: Request) -> Rights:
    user = (request.scope.get("state") or {}).get("user")
    if policy is None or not isinstance(user, User) or MASTERS in user.groups:
        return lambda: None
    return lambda: rights(user, policy.authorize)  # asked again per batch: bindings may change


async def _feed(hub: Hub, rights_now: Rights) -> AsyncIterator[bytes]:
    # Subscribed inside the generator: its finally then always runs for a subscriber.
    sub = hub.subscribe()
    try:
        yield b"retry: 2000\n\n"
        while True:
            try:
                await asyncio.wait_for(sub.wake.wait(), KEEPALIVE_S)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            sub.wake.clear()
            snapshot, changes = sub.take()
            sees = rights_now()
            if sees is not None:
                snapshot = visible_snapshot(snapshot, sees) if snapshot is not None else None
                changes = visible_changes(changes, sees)
            if snapshot is not None:
                yield _sse("snapshot", snapshot)
            if changes:
                yield _sse("changes", changes)
    finally:
        hub.unsubscribe(sub)


def routes(registry: Registry, policy: AuthPolicy | None = None) -> list[BaseRoute]:
    """The dashboard; with `policy` (the API's authentication) its login routes and per-user views."""
    hub = Hub(registry)
    # Read once: the files are small, and a page load must not touch the disk on the event loop.
    assets = {name: _asset(name) for name in ("index.html", *STATIC)}

    def _file(name: str) -> Response:
        suffix = name[name.rfind("."):]
        return Response(assets[name], media_type=MEDIA[suffix], headers={"Cache-Control": "no-cache"})

    async def page(_request: Request) -> Response:
        return _file("index.html")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        return _file(name)

    async def events(request: Request) -> Response:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(_feed(hub, _rights_of(policy, request)), media_type="text/event-stream",
                                 headers=headers)

    async def snapshot(request: Request) -> Response:
        sub = hub.subscribe()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sub.wake.wait(), 10.0)
            data, _ = sub.take()
        finally:
            hub.unsubscribe(sub)
        data = data if data is not None else hub.snapshot()
        sees = _rights_of(policy, request)()
        return JSON(visible_snapshot(data, sees) if sees is not None else data)

    return [
        *(login_routes(policy) if policy is not None else []),
        Route("/ui", page, methods=["GET"]),
        Route("/ui/", page, methods=["GET"]),
        Route("/ui/static/{name}", static, methods=["GET"]),
        Route("/ui/events", events, methods=["GET"]),
        Route("/ui/snapshot", snapshot, methods=["GET"]),
    ]
