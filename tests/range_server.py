"""A small HTTP file server for the download tests: serves byte strings by path, honours
`Range: bytes=N-`, and can cut a response short or ignore ranges, as real servers do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.agent.registry_servers import serve


@dataclass
class Files:
    content: dict[str, bytes] = field(default_factory=dict)
    cut_after: int | None = None  # send this many body bytes of the next response, then drop the connection
    ignore_range: bool = False
    no_length: bool = False  # send no Content-Length (the body ends when the connection closes)
    ranges: list[str | None] = field(default_factory=list)  # the Range header of every GET


class _Handler(BaseHTTPRequestHandler):
    files: Files

    def do_GET(self) -> None:
        self.files.ranges.append(self.headers.get("Range"))
        body = self.files.content.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        wanted = self.headers.get("Range")
        if wanted and not self.files.ignore_range:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        if self.files.no_length:
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        rest = body[start:]
        if self.files.cut_after is not None:
            rest, self.files.cut_after = rest[:self.files.cut_after], None
            self.wfile.write(rest)
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(rest)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serving(files: Files) -> Iterator[str]:
    """The base URL of a server for `files` on a free loopback port, stopped afterwards."""
    handler = type("Handler", (_Handler,), {"files": files})
    with serve(handler) as url:
        yield url
