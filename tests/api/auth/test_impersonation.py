"""Impersonation headers (pure): each part checked with the verb impersonate, the resulting
user's groups as Kubernetes makes them, Kubernetes' refusal."""

from __future__ import annotations

import pytest

from sigma.api.auth.attributes import Attributes
from sigma.api.auth.identity import User
from sigma.api.auth.impersonation import impersonate, wants_impersonation
from sigma.api.auth.noderestriction import ALLOW, Decision, deny
from sigma.api.errors import ApiError

CALLER = User("alice", "", ("ops", "system:authenticated"))


def allowing(*allowed: tuple[str, str]) -> tuple[list[tuple[str, str | None, str | None]], object]:
    asked: list[tuple[str, str | None, str | None]] = []

    def authorize(user: User, a: Attributes) -> Decision:
        assert user == CALLER and a.verb == "impersonate"
        asked.append((a.resource_path, a.namespace, a.name))
        return ALLOW if (a.resource_path, a.name or "") in allowed else deny("")

    return asked, authorize


def test_a_user_and_groups_each_need_the_impersonate_verb() -> None:
    asked, authorize = allowing(("users", "bob"), ("groups", "devs"))
    headers = [("impersonate-user", "bob"), ("impersonate-group", "devs")]
    assert wants_impersonation(headers)
    user = impersonate(CALLER, headers, authorize)  # type: ignore[arg-type]
    assert user == User("bob", "", ("devs", "system:authenticated"))
    assert asked == [("users", None, "bob"), ("groups", None, "devs")]


def test_a_group_not_allowed_is_refused_with_kubernetes_message() -> None:
    _, authorize = allowing(("users", "bob"))
    with pytest.raises(ApiError) as err:
        impersonate(CALLER, [("impersonate-user", "bob"), ("impersonate-group", "system:masters")],
                    authorize)  # type: ignore[arg-type]
    assert err.value.code == 403
    assert err.value.message == ('groups "system:masters" is forbidden: User "alice" cannot impersonate resource '
                                 '"groups" in API group "" at the cluster scope')


def test_a_service_account_is_checked_in_its_namespace_and_gets_its_groups() -> None:
    asked, authorize = allowing(("serviceaccounts", "ci"), ("uids", "u-1"), ("userextras/scopes", "read"))
    headers = [("impersonate-user", "system:serviceaccount:build:ci"), ("impersonate-uid", "u-1"),
               ("impersonate-extra-scopes", "read")]
    user = impersonate(CALLER, headers, authorize)  # type: ignore[arg-type]
    assert asked[0] == ("serviceaccounts", "build", "ci")
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:build", "system:authenticated")
    assert user.uid == "u-1" and user.extra == (("scopes", ("read",)),)


def test_groups_without_a_user_are_a_bad_request() -> None:
    _, authorize = allowing()
    with pytest.raises(ApiError) as err:
        impersonate(CALLER, [("impersonate-group", "devs")], authorize)  # type: ignore[arg-type]
    assert err.value.code == 400 and "without impersonating a user" in err.value.message
    assert not wants_impersonation([("authorization", "Bearer x")])
