"""Who the request being served comes from, for admission that decides on it (RBAC's
escalation checks). Set by the auth middleware for the request's task; None inside the
master's own controllers (LocalClient), which are trusted, and without authentication."""

from __future__ import annotations

from contextvars import ContextVar

from sigma.api.auth.identity import User

REQUEST_USER: ContextVar[User | None] = ContextVar("sigma_request_user", default=None)


def requesting_user() -> User | None:
    return REQUEST_USER.get()
