"""The master's ASGI app called in this process (no socket, no subprocess): for tests of what
the API answers where a real master would only add start-up time."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


class Api:
    def __init__(self, app: Any) -> None:
        self.transport = httpx.ASGITransport(app=app)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url="http://master") as c:
                return await c.request(method, path, **kwargs)

        return asyncio.run(call())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.request("POST", path, json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())
