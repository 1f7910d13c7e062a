"""The ASGI middleware in front of the whole API: authenticate, rate-limit, authorise, audit.

Order matters and is Kubernetes': a request is first tied to a user (401 if it presents a
credential that does not hold), then throttled per client (429), then authorised (403), and
only then reaches the API. Mutating requests are audited with the code they ended with,
whatever stopped them.

Under /ui (the dashboard) a browser may instead present the session cookie of a login at
/ui/login (sessions.py, browser.py): it then acts as the user who logged in, through the same
rate limits and RBAC, and what it posts must come from the dashboard's own origin. Without
any credential, a browser asking for a dashboard page gets the login page; the login and
logout endpoints decide for themselves. Everywhere else, and for clients that are not
browsers, nothing changes: no credential is a 401.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from sigma.api import errors
from sigma.api.auth.attributes import Attributes, attributes_of
from sigma.api.auth.audit import AuditLog
from sigma.api.auth.browser import LOGIN_PATH, LOGOUT_PATH, cross_site_reason, is_ui_path, session_id, wants_html
from sigma.api.auth.certs import user_of_peer_cert
from sigma.api.auth.identity import ANONYMOUS, MASTERS, User
from sigma.api.auth.impersonation import impersonate, wants_impersonation
from sigma.api.auth.noderestriction import BodyCheck, Decision, PodNode
from sigma.api.auth.ratelimit import RateLimiter, failed_auth_limiter, retry_after_header
from sigma.api.auth.rbac import Bindings, authorize, forbidden_message
from sigma.api.auth.rbac_authz import authorize as authorize_rbac
from sigma.api.auth.rbac_cache import RbacCache
from sigma.api.auth.request_user import REQUEST_USER
from sigma.api.auth.sessions import SessionStore
from sigma.api.auth.tokens import Credentials
from sigma.api.errors import ApiError
from sigma.api.query import parse_query

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# Anonymous callers of a loopback master started with --allow-anonymous-loopback.
ANONYMOUS_ADMIN = User("system:anonymous", "", ("system:unauthenticated", MASTERS))
MAX_CHECKED_BODY = 3 * 1024 * 1024
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")  # what anonymous callers may read


@dataclass
class AuthPolicy:
    credentials: Credentials
    bindings: Bindings
    pod_node: PodNode
    allow_anonymous: bool = False
    limiter: RateLimiter | None = None
    audit: AuditLog | None = None
    # Failed authentications per source address, checked before authenticating (429).
    failed_auth: RateLimiter | None = field(default_factory=failed_auth_limiter)
    # The dashboard's browser sessions and one-time login links (in memory).
    sessions: SessionStore = field(default_factory=SessionStore)
    # ServiceAccount tokens (sigma.api.satoken_auth), asked after the token file's.
    service_accounts: Callable[[str], User | None] | None = None
    # Roles and bindings from the store (sigma.api.auth.rbac_cache); None: the file's only.
    rbac: RbacCache | None = None

    def authorize(self, user: User, attrs: Attributes) -> Decision:
        if self.rbac is not None:
            return authorize_rbac(user, attrs, self.rbac, self.pod_node)
        return authorize(user, attrs, self.bindings.current(), self.pod_node)


class Unauthorized(Exception):
    pass


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


def authenticate(policy: AuthPolicy, scope: Scope) -> User:
    auth = _header(scope, b"authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        user = policy.credentials.authenticate(token.strip()) if scheme.lower() == "bearer" else None
        if user is None and scheme.lower() == "bearer" and policy.service_accounts is not None:
            user = policy.service_accounts(token.strip())
        if user is None:
            raise Unauthorized
        return user
    peer = ((scope.get("extensions") or {}).get("tls") or {}).get("peer_cert")
    named = user_of_peer_cert(peer) if peer else None
    if named is not None:
        return User(named[0], "", named[1]).with_authenticated()
    return ANONYMOUS_ADMIN if policy.allow_anonymous else ANONYMOUS


async def _respond(send: Send, err: ApiError, headers: dict[str, str] | None = None) -> None:
    body = orjson.dumps(err.status())
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": err.code, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """The whole body and the messages it came in, to replay to the app."""
    messages, chunks, size = [], [], 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_CHECKED_BODY:
            raise errors.too_large(MAX_CHECKED_BODY)
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks), messages


class AuthMiddleware:
    def __init__(self, app: App, policy: AuthPolicy) -> None:
        self.app, self.policy = app, policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):  # websocket: kubectl exec (api/streaming.py)
            await self.app(scope, receive, send)
            return
        source = str((scope.get("client") or ("?",))[0])
        failures = self.policy.failed_auth
        # The login page answers a blocked address itself (in HTML, and without taking a guess).
        exempt = scope["path"] in PUBLIC_PATHS or scope["path"] == LOGIN_PATH
        wait = failures.blocked(source) if failures is not None and not exempt else 0.0
        if wait > 0:
            # Too many failed authentications from this address: refused before anything else
            # is done (its credential is not even looked at), and not audited: the failures
            # that led here were. Health checks stay answered.
            retry = retry_after_header(wait)
            await _respond(send, ApiError(429, "TooManyRequests", "too many failed authentication attempts from "
                                          "this address, please try again later", retry_after_seconds=int(retry)),
                           {"Retry-After": retry})
            return
        # Decided on the same parsed parameters the handler serves; a repeated one is refused
        # (after authentication, so an anonymous caller still learns nothing but 401).
        bad_query: ApiError | None = None
        try:
            query = parse_query(bytes(scope.get("query_string") or b""))
        except ApiError as err:
            query, bad_query = {}, err
        attrs = attributes_of(scope["method"], scope["path"].rstrip("/") or "/", query)
        user = ANONYMOUS
        impersonator: User | None = None
        code = [500]

        async def tracking_send(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                code[0] = int(message["status"])
            elif message["type"] == "websocket.accept":
                code[0] = 101
            await send(message)

        try:
            user = authenticate(self.policy, scope)
            if user is ANONYMOUS and is_ui_path(scope["path"]):
                user = self._dashboard_user(scope)
            asked = [(bytes(k).decode("latin-1").lower(), bytes(v).decode("latin-1"))
                     for k, v in scope.get("headers") or []]
            if user is not ANONYMOUS and wants_impersonation(asked):
                impersonator, user = user, impersonate(user, asked, self.policy.authorize)
            if bad_query is not None and user is not ANONYMOUS:
                raise bad_query
            receive = await self._admit(scope, receive, user, attrs)
        except Unauthorized:
            if failures is not None:
                failures.take(source)
            await _respond(tracking_send, ApiError(401, "Unauthorized", "Unauthorized"))
        except ApiError as err:
            headers = {"Retry-After": str(err.retry_after_seconds)} if err.retry_after_seconds else None
            await _respond(tracking_send, err, headers)
        else:
            scope.setdefault("state", {})["user"] = user
            token = REQUEST_USER.set(user)  # for admission's escalation checks (rbac_kinds)
            try:
                await self.app(scope, receive, tracking_send)
            finally:
                REQUEST_USER.reset(token)
        finally:
            # Tracker announces are frequent and change no API object: not audited.
            if self.policy.audit is not None and attrs.mutating and not attrs.path.startswith("/p2p/"):
                self._audit(user, attrs, code[0], scope, impersonator)

    def _dashboard_user(self, scope: Scope) -> User:
        """The user of a request under /ui without a bearer token or client certificate: the
        user of its session cookie (a state-changing request only from the dashboard's own
        origin), else anonymous, shown the login page if it is a browser asking for a page."""
        user = self.policy.sessions.user_of(session_id(_header(scope, b"cookie")))
        if user is not None:
            reason = cross_site_reason(scope["method"], _header(scope, b"origin"), _header(scope, b"sec-fetch-site"),
                                       _header(scope, b"host"), str(scope.get("scheme") or "http"))
            if reason is not None:
                raise ApiError(403, "Forbidden", reason)
            return user
        if scope["method"] in ("GET", "HEAD") and wants_html(_header(scope, b"accept")) \
                and scope["path"] not in (LOGIN_PATH, LOGOUT_PATH):
            # Whatever dashboard page was asked for, the login page answers (the secret of a
            # one-time link is only ever read at /ui/login itself).
            scope["path"], scope["raw_path"], scope["query_string"] = LOGIN_PATH, LOGIN_PATH.encode(), b""
        return ANONYMOUS

    async def _admit(self, scope: Scope, receive: Receive, user: User, attrs: Attributes) -> Receive:
        """Rate-limit and authorise; the receive channel to hand on (replaying a read body)."""
        policy = self.policy
        logging_in = scope["path"] in (LOGIN_PATH, LOGOUT_PATH)
        if user is ANONYMOUS and attrs.path not in PUBLIC_PATHS and not logging_in:
            raise Unauthorized
        if policy.limiter is not None and MASTERS not in user.groups:
            client = user.name if user is not ANONYMOUS else f"ip:{(scope.get('client') or ('?',))[0]}"
            wait = policy.limiter.take(client)
            if wait > 0:
                raise ApiError(429, "TooManyRequests", f"too many requests from {user.name}, please try again later",
                               retry_after_seconds=int(retry_after_header(wait)))
        if attrs.path.startswith(("/sigma/", "/p2p/")) and user is not ANONYMOUS:
            return receive  # the join endpoint and the tracker decide for themselves
        if logging_in:
            return receive  # so do the dashboard's login and logout (sigma.ui.login)
        decision = policy.authorize(user, attrs)
        if not decision.allowed:
            raise self._forbidden(user, attrs, decision.reason)
        if decision.body_check is None:
            return receive
        return await self._check_body(receive, user, attrs, decision.body_check)

    async def _check_body(self, receive: Receive, user: User, attrs: Attributes, check: BodyCheck) -> Receive:
        raw, messages = await _read_body(receive)
        try:
            body = orjson.loads(raw) if raw.strip() else None
        except orjson.JSONDecodeError:
            body = None
        reason = check(body)
        if reason is not None:
            raise self._forbidden(user, attrs, reason)
        pending = list(messages)

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        return replay

    @staticmethod
    def _forbidden(user: User, attrs: Attributes, reason: str) -> ApiError:
        return ApiError(403, "Forbidden", forbidden_message(user, attrs, reason), kind=attrs.resource,
                        name=attrs.name or "", group=attrs.group)

    def _audit(self, user: User, attrs: Attributes, code: int, scope: Scope, impersonator: User | None) -> None:
        assert self.policy.audit is not None
        client = scope.get("client") or ("", 0)
        uri = scope["path"] + (f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else "")
        named = (scope.get("state") or {}).get("audit_name")  # set by an endpoint that knows better (join)
        if named and not attrs.name:
            attrs = dataclasses.replace(attrs, name=str(named))
        if impersonator is not None:  # Kubernetes' audit: the user who asked, and whom it acted as
            self.policy.audit.record(impersonator, attrs, code, str(client[0]), uri, impersonated=user)
        else:
            self.policy.audit.record(user, attrs, code, str(client[0]), uri)
