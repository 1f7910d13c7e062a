"""Which namespaces need a default ServiceAccount or the CA ConfigMap (pure)."""

from __future__ import annotations

from sigma.master.controllers.serviceaccounts import missing


def ns(name: str, terminating: bool = False) -> dict[str, object]:
    meta: dict[str, object] = {"name": name}
    if terminating:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": meta}


def test_missing_accounts_and_ca_maps() -> None:
    plan = missing([ns("a"), ns("b"), ns("c"), ns("gone", terminating=True)], {"a"},
                   {"a": {"data": {"ca.crt": "PEM"}}, "b": {"data": {"ca.crt": "OLD"}}}, "PEM")
    assert plan.accounts == ["b", "c"] and plan.create_ca == ["c"] and plan.update_ca == ["b"]


def test_nothing_to_do() -> None:
    plan = missing([ns("a")], {"a"}, {"a": {"data": {"ca.crt": ""}}}, "")
    assert (plan.accounts, plan.create_ca, plan.update_ca) == ([], [], [])
