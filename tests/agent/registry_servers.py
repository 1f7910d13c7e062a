"""Registries that ask for credentials, for the image pull tests; nothing leaves loopback.

- `TokenServer`: a distribution-spec token server. It signs JWTs (RS256) with a key the
  test made; the registry trusts the key's self-signed certificate (its rootcertbundle)
  and finds the certificate in the token's `x5c` header. Repositories under `public/` are
  pullable anonymously; the others need a user it knows (Basic auth on the token GET).
- `token_registry`: Debian's docker-registry with `auth: token`, serving the storage
  of a plain registry the test pushes to (tests.p2p.conftest), so pushes need no token.
- `Front`: an HTTP front of a registry that answers some paths itself (429, a forged
  manifest, a redirect to another host) and records what it was sent.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import os
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.p2p.conftest import REGISTRY_BIN, LocalRegistry, free_port

SERVICE = "sigma-test-registry"
ISSUER = "sigma-test-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Signer:
    """An RSA key and its self-signed certificate (the registry's rootcertbundle)."""

    def __init__(self, workdir: str) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sigma test token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = os.path.join(workdir, "token-ca.pem")
        with open(self.bundle, "wb") as f:
            f.write(self.cert.public_bytes(serialization.Encoding.PEM))

    def jwt(self, subject: str, access: list[dict[str, Any]], seconds: int) -> str:
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + seconds, "nbf": now - 10,
                  "iat": now, "jti": secrets.token_hex(8), "access": access}
        signing = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        sig = self.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing}.{_b64url(sig)}"


@dataclass
class TokenServer:
    signer: Signer
    users: dict[str, str] = field(default_factory=dict)
    expires_in: int | None = 300
    field_name: str = "token"  # or "access_token"
    requests: list[dict[str, Any]] = field(default_factory=list)  # what it was asked: scope, user
    url: str = ""

    def answer(self, query: dict[str, list[str]], authorization: str | None) -> tuple[int, dict[str, Any]]:
        user = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            name, _, password = base64.b64decode(value).decode().partition(":")
            if scheme.lower() != "basic" or self.users.get(name) != password:
                return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid username or password"}]}
            user = name
        scope = (query.get("scope") or [""])[0]
        self.requests.append({"scope": scope, "user": user, "service": (query.get("service") or [""])[0]})
        access = []
        m = re.match(r"^repository:([^:]+):(.+)$", scope)
        if m and (m.group(1).startswith("public/") or user is not None):
            access.append({"type": "repository", "name": m.group(1), "actions": ["pull"]})
        token = self.signer.jwt(user or "", access, 300)
        body: dict[str, Any] = {self.field_name: token}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return 200, body


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A handler class served on loopback for the block; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def token_server(ts: TokenServer) -> Iterator[TokenServer]:
    class Handler(_Quiet):
        def do_GET(self) -> None:
            status, body = ts.answer(parse_qs(urlsplit(self.path).query), self.headers.get("Authorization"))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    with serve(Handler) as base:
        ts.url = f"{base}/token"
        yield ts


def _start(workdir: str, storage: str, auth_yaml: str, name: str) -> tuple[LocalRegistry, subprocess.Popen[bytes]]:
    port = free_port()
    config = os.path.join(workdir, f"{name}.yml")
    with open(config, "w") as f:
        f.write(
            f"version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
            f"http:\n  addr: 127.0.0.1:{port}\n{auth_yaml}"
        )
    log = os.path.join(workdir, f"{name}.log")
    with open(log, "wb") as out:
        proc = subprocess.Popen([REGISTRY_BIN, "serve", config], stdout=out, stderr=subprocess.STDOUT)
    reg = LocalRegistry(f"127.0.0.1:{port}", storage, log)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            if httpx.get(f"{reg.base}/v2/", timeout=1).status_code in (200, 401):
                return reg, proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    with open(log) as f:
        raise RuntimeError(f"docker-registry did not start: {f.read()[-2000:]}")


@contextmanager
def token_registry(workdir: str, storage: str, ts: TokenServer) -> Iterator[LocalRegistry]:
    auth = (f"auth:\n  token:\n    realm: {ts.url}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
            f"    rootcertbundle: {ts.signer.bundle}\n")
    reg, proc = _start(workdir, storage, auth, "token-registry")
    try:
        yield reg
    finally:
        proc.terminate()
        proc.wait(timeout=10)


Override = Callable[[str, str, dict[str, str]], tuple[int, dict[str, str], bytes] | None]


@dataclass
class Front:
    """Proxies to `upstream`; `override(method, path, headers)` may answer instead."""

    upstream: str
    override: Override = lambda method, path, headers: None
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    url: str = ""


@contextmanager
def front(f: Front) -> Iterator[Front]:
    class Handler(_Quiet):
        def _any(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            f.seen.append((self.command, self.path, headers))
            answer = f.override(self.command, self.path, headers)
            if answer is None:
                fwd = {k: v for k, v in headers.items() if k in ("accept", "authorization", "range")}
                resp = httpx.request(self.command, f.upstream + self.path, headers=fwd, timeout=30)
                keep = ("content-type", "docker-content-digest", "www-authenticate", "location")
                answer = (resp.status_code, {k: v for k, v in resp.headers.items() if k in keep}, resp.content)
            status, out_headers, body = answer
            self.send_response(status)
            for k, v in out_headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = _any

    with serve(Handler) as base:
        f.url = base
        yield f
