"""Authenticating to a registry as the distribution spec's token flow says.

    GET /v2/NAME/manifests/REF            -> 401, WWW-Authenticate: Bearer realm="R",service="S",scope="..."
    GET R?service=S&scope=repository:NAME:pull     (anonymous, or Basic with the pull secret's
                                                   user and password) -> {"token" | "access_token",
                                                   "expires_in" (default 60)}
    GET /v2/NAME/manifests/REF  Authorization: Bearer TOKEN

A token is kept per (registry, scope) until expires_in runs out, so that the blobs of one
image and the next pull of the same repository go straight through. A `Basic` challenge is
answered with the credentials themselves. Redirects (a registry sends blobs to its storage:
307 to another host) are followed by hand, and the Authorization header is never sent to a
host other than the registry's: the storage's presigned URL carries its own authority.

Challenge parsing and token expiry are pure (`parse_challenges`, `token_lifetime`); the
session holds the cache and does the HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

DEFAULT_TOKEN_SECONDS = 60.0  # the spec's default when the token server names no expires_in
MAX_REDIRECTS = 5
_PARAM = re.compile(r'\s*([a-zA-Z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


@dataclass(frozen=True)
class Credential:
    username: str
    password: str

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic", lowercased
    params: Mapping[str, str]


class RegistryAuthError(RuntimeError):
    """The token server refused (or could not be reached); the message carries its answer,
    `status` its HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def parse_challenges(header: str) -> list[Challenge]:
    """`Bearer realm="https://auth",service="reg",scope="repository:a:pull"` -> challenges.
    One header may hold several (`Basic realm="x", Bearer realm="y"`)."""
    out: list[Challenge] = []
    rest = header.strip()
    while rest:
        m = re.match(r"([A-Za-z][\w-]*)\s*", rest)
        if not m:
            break
        scheme, rest = m.group(1).lower(), rest[m.end() :]
        params: dict[str, str] = {}
        while True:
            p = _PARAM.match(rest)
            # A bare word followed by space (not "=") starts the next challenge.
            if not p:
                break
            value = p.group(2) if p.group(2) is not None else p.group(3)
            params[p.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
            rest = rest[p.end() :]
        out.append(Challenge(scheme, params))
        rest = rest.lstrip(", ")
    return out


def token_lifetime(answer: Mapping[str, object]) -> tuple[str, float]:
    """(token, seconds it may be used) from a token server's JSON answer."""
    token = answer.get("token") or answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise RegistryAuthError("the token server answered without a token")
    expires = answer.get("expires_in")
    seconds = float(expires) if isinstance(expires, (int, float)) and expires > 0 else DEFAULT_TOKEN_SECONDS
    return token, seconds


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def status_text(resp: httpx.Response) -> str:
    """ "401 Unauthorized", and the registry's own error codes and messages if it sent any."""
    text = f"{resp.status_code} {resp.reason_phrase}".strip()
    try:
        errors = resp.json().get("errors") or []
    except (ValueError, AttributeError, httpx.ResponseNotRead):
        errors = []
    said = "; ".join(f"{e.get('code', '')} {e.get('message', '')}".strip() for e in errors if isinstance(e, dict))
    return f"{text}: {said}" if said else text


class RegistryAuth:
    """One node's registry session: the HTTP client, the token cache, and who to ask for
    credentials. `credential(base_url)` is the credential for that endpoint, or None."""

    def __init__(
        self,
        http: httpx.Client | None = None,
        credential: Credential | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http or httpx.Client(timeout=30.0)
        self.credential = credential
        self.clock = clock
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}  # (host, scope) -> (header, until)
        self._challenges: dict[str, Challenge] = {}  # host -> its last challenge
        self._lock = threading.Lock()

    def with_credential(self, credential: Credential | None) -> RegistryAuth:
        """The same client and token cache tried with another credential."""
        other = RegistryAuth(self.http, credential, self.clock)
        other._tokens, other._challenges, other._lock = self._tokens, self._challenges, self._lock
        return other

    def cached(self, host: str, scope: str) -> str | None:
        with self._lock:
            hit = self._tokens.get((host, self._who() + scope))
            if hit and self.clock() < hit[1]:
                return hit[0]
            self._tokens.pop((host, self._who() + scope), None)
            return None

    def _who(self) -> str:
        # Tokens are per credential too (user and password): a token got with a pod's
        # secret is never lent to a pull without it, nor to one with another password.
        if self.credential is None:
            return "\0"
        return hashlib.sha256(f"{self.credential.username}:{self.credential.password}".encode()).hexdigest() + "\0"

    def open(self, method: str, url: str, repository: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
        """Send the request with whatever authorization the registry asks for, following
        redirects; a streamed response the caller closes. A 401 that no credential answers
        is returned as is (the caller reports its text)."""
        scope = pull_scope(repository)
        origin = httpx.URL(url).netloc.decode()
        sent = dict(headers or {})
        auth = self.cached(origin, scope) or self._basic_up_front(origin)
        retried = False
        for _ in range(MAX_REDIRECTS + 2):
            target = httpx.URL(url)
            same_host = target.netloc.decode() == origin
            req_headers = {**sent, **({"Authorization": auth} if auth and same_host else {})}
            resp = self.http.send(self.http.build_request(method, url, headers=req_headers), stream=True)
            if resp.status_code == 401 and same_host and not retried:
                challenge = _pick(parse_challenges(resp.headers.get("WWW-Authenticate", "")))
                if challenge is None or (challenge.scheme == "basic" and self.credential is None):
                    return resp  # nothing to answer it with: the caller reports the 401
                resp.read()
                resp.close()
                retried = True
                with self._lock:
                    self._challenges[origin] = challenge
                auth = self._answer(origin, challenge, scope)
                continue
            if resp.status_code in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                resp.close()
                url = str(target.join(resp.headers["Location"]))
                if resp.status_code == 303:
                    method = "GET"
                continue
            return resp
        raise RegistryAuthError(f"{url}: more than {MAX_REDIRECTS} redirects")

    def _basic_up_front(self, host: str) -> str | None:
        with self._lock:
            known = self._challenges.get(host)
        if known is not None and known.scheme == "basic" and self.credential is not None:
            return self.credential.basic()
        return None

    def _answer(self, host: str, challenge: Challenge, scope: str) -> str:
        if challenge.scheme == "basic":
            assert self.credential is not None
            return self.credential.basic()
        realm = challenge.params.get("realm")
        if not realm:
            raise RegistryAuthError(f"the registry at {host} asks for a bearer token but names no realm")
        params = {"scope": scope}
        if challenge.params.get("service"):
            params["service"] = challenge.params["service"]
        headers = {"Authorization": self.credential.basic()} if self.credential else {}
        try:
            resp = self.http.get(realm, params=params, headers=headers, follow_redirects=True)
        except httpx.HTTPError as err:
            raise RegistryAuthError(f"cannot reach the token server {realm}: {err}") from err
        if resp.status_code != 200:
            who = "with the pull credentials" if self.credential else "anonymously"
            raise RegistryAuthError(f"the token server {realm} refused a token {who}: {status_text(resp)}",
                                    resp.status_code)
        try:
            token, seconds = token_lifetime(resp.json())
        except ValueError as err:
            raise RegistryAuthError(f"the token server {realm} answered no JSON: {err}") from err
        header = f"Bearer {token}"
        with self._lock:
            self._tokens[(host, self._who() + scope)] = (header, self.clock() + seconds)
        return header


def _pick(challenges: list[Challenge]) -> Challenge | None:
    for scheme in ("bearer", "basic"):
        for c in challenges:
            if c.scheme == scheme:
                return c
    return None
