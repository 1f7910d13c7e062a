"""Impersonation: acting as another user through the headers ``Impersonate-User``,
``Impersonate-Group`` (repeated), ``Impersonate-Uid`` and ``Impersonate-Extra-KEY``, as
Kubernetes' impersonation filter does (``kubectl --as USER --as-group GROUP``).

Each part is authorised for the caller with the verb ``impersonate``: ``users`` (or the
ServiceAccount ``serviceaccounts`` in its namespace for ``system:serviceaccount:NS:NAME``)
and ``groups`` in the core group, ``uids`` and ``userextras/KEY`` in
authentication.k8s.io, each named by the value asked for. The request then runs as the
impersonated user: a ServiceAccount gets its groups, everyone but system:anonymous gets
``system:authenticated``. Groups, a uid or extras without a user are refused (400).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import unquote

from sigma.api import errors
from sigma.api.auth.attributes import Attributes
from sigma.api.auth.identity import AUTHENTICATED, UNAUTHENTICATED, User
from sigma.api.auth.noderestriction import Decision
from sigma.api.auth.rbac import forbidden_message
from sigma.api.auth.rbac_rules import SERVICE_ACCOUNT_PREFIX
from sigma.api.errors import ApiError
from sigma.api.resources import ResourceType

USER_HEADER = "impersonate-user"
GROUP_HEADER = "impersonate-group"
UID_HEADER = "impersonate-uid"
EXTRA_PREFIX = "impersonate-extra-"
ANONYMOUS_NAME = "system:anonymous"
AUTHN_GROUP = "authentication.k8s.io"
# What the impersonate verb is checked on: resources RBAC names but the API does not serve.
USERS = ResourceType("", "v1", "User", "users", False)
GROUPS = ResourceType("", "v1", "Group", "groups", False)
SERVICE_ACCOUNTS = ResourceType("", "v1", "ServiceAccount", "serviceaccounts", True)
UIDS = ResourceType(AUTHN_GROUP, "v1", "UID", "uids", False)
USER_EXTRAS = ResourceType(AUTHN_GROUP, "v1", "UserExtra", "userextras", False)

Authorize = Callable[[User, Attributes], Decision]


def wants_impersonation(headers: Iterable[tuple[str, str]]) -> bool:
    return any(k in (USER_HEADER, GROUP_HEADER, UID_HEADER) or k.startswith(EXTRA_PREFIX)
               for k, _ in headers)


def _checks(name: str, groups: list[str], uid: str, extra: dict[str, list[str]]) -> list[Attributes]:
    out = []
    if name:
        if name.startswith(SERVICE_ACCOUNT_PREFIX) and name.count(":") == 3:
            _, _, ns, sa = name.split(":")
            out.append(Attributes("impersonate", "", SERVICE_ACCOUNTS, "", ns, sa))
        else:
            out.append(Attributes("impersonate", "", USERS, "", None, name))
    out += [Attributes("impersonate", "", GROUPS, "", None, g) for g in groups]
    if uid:
        out.append(Attributes("impersonate", "", UIDS, "", None, uid))
    out += [Attributes("impersonate", "", USER_EXTRAS, key, None, v) for key, values in extra.items() for v in values]
    return out


def impersonate(caller: User, headers: Iterable[tuple[str, str]], authorize: Authorize) -> User:
    """The user the request acts as; ApiError 403 (Kubernetes' message) when the caller may
    not impersonate one of the parts, 400 when the headers ask for no user."""
    name, uid, groups = "", "", []
    extra: dict[str, list[str]] = {}
    for key, value in headers:
        if key == USER_HEADER:
            name = value
        elif key == GROUP_HEADER:
            groups.append(value)
        elif key == UID_HEADER:
            uid = value
        elif key.startswith(EXTRA_PREFIX):
            extra.setdefault(unquote(key[len(EXTRA_PREFIX):]).lower(), []).append(value)
    if not name:
        asked = [*(f"group {g}" for g in groups), *([f"uid {uid}"] if uid else []), *(f"extra {k}" for k in extra)]
        raise errors.bad_request(f"requested [{', '.join(asked)}] without impersonating a user")
    for attrs in _checks(name, groups, uid, extra):
        decision = authorize(caller, attrs)
        if not decision.allowed:
            raise ApiError(403, "Forbidden", forbidden_message(caller, attrs, decision.reason), kind=attrs.resource,
                           name=attrs.name or "", group=attrs.group)
    if name.startswith(SERVICE_ACCOUNT_PREFIX) and name.count(":") == 3:
        ns = name.split(":")[2]
        groups = [*groups, *(g for g in ("system:serviceaccounts", f"system:serviceaccounts:{ns}") if g not in groups)]
    if name != ANONYMOUS_NAME:
        if AUTHENTICATED not in groups:
            groups.append(AUTHENTICATED)
    elif UNAUTHENTICATED not in groups:
        groups.append(UNAUTHENTICATED)
    return User(name, uid, tuple(groups), tuple((k, tuple(v)) for k, v in extra.items()))
