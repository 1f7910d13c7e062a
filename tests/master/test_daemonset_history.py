"""The pure core of a DaemonSet's revision history: create, renumber, prune."""

from __future__ import annotations

from typing import Any

from sigma.master.controllers.daemonset_history import plan_history, revision_data
from sigma.master.controllers.daemonset_plan import REVISION_HASH_LABEL, daemon_pod
from sigma.master.controllers.rollout import template_hash


def daemon_set(image: str, limit: int | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    ds: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "default", "uid": "ds-uid", "annotations": annotations or {}},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"containers": [{"name": "m", "image": image}]}}}}
    if limit is not None:
        ds["spec"]["revisionHistoryLimit"] = limit
    return ds


def stored(ds: dict[str, Any], number: int) -> dict[str, Any]:
    """The revision plan_history would have made for ds, as numbered."""
    rev = plan_history(ds, [], []).create
    assert rev is not None
    return {**rev, "revision": number}


def test_first_revision_holds_the_template_as_a_replace_patch() -> None:
    ds = daemon_set("a:1", annotations={"kubernetes.io/change-cause": "first"})
    plan = plan_history(ds, [], [])
    h = template_hash(ds["spec"]["template"])
    assert plan.current_hash == h
    assert plan.create is not None
    assert plan.create["metadata"]["name"] == f"agent-{h}"
    assert plan.create["metadata"]["labels"] == {"app": "agent", REVISION_HASH_LABEL: h}
    assert plan.create["metadata"]["annotations"] == {"kubernetes.io/change-cause": "first"}
    assert plan.create["revision"] == 1
    assert plan.create["data"] == {"spec": {"template": {**ds["spec"]["template"], "$patch": "replace"}}}
    assert not plan.renumber and not plan.delete


def test_the_hash_is_the_one_daemon_pods_carry() -> None:
    ds = daemon_set("a:1")
    assert daemon_pod(ds, "n1")["metadata"]["labels"][REVISION_HASH_LABEL] == plan_history(ds, [], []).current_hash


def test_a_new_template_gets_the_next_number_and_an_unchanged_one_nothing() -> None:
    revs = [stored(daemon_set("a:1"), 1), stored(daemon_set("a:2"), 2)]
    plan = plan_history(daemon_set("a:3"), revs, [])
    assert plan.create is not None and plan.create["revision"] == 3
    unchanged = plan_history(daemon_set("a:2"), revs, [])
    assert unchanged.create is None and not unchanged.renumber and not unchanged.delete


def test_an_old_template_coming_back_reuses_its_revision_renumbered() -> None:
    revs = [stored(daemon_set("a:1"), 1), stored(daemon_set("a:2"), 2), stored(daemon_set("a:3"), 3)]
    plan = plan_history(daemon_set("a:1"), revs, [])
    assert plan.create is None
    assert [(r["metadata"]["name"], n) for r, n in plan.renumber] == [(revs[0]["metadata"]["name"], 4)]


def test_history_is_pruned_oldest_first_to_the_limit_sparing_revisions_pods_still_run() -> None:
    images = [f"a:{n}" for n in range(1, 6)]
    revs = [stored(daemon_set(image), n) for n, image in enumerate(images, start=1)]
    old_pod = daemon_pod(daemon_set("a:1"), "n1")  # a pod of revision 1 still runs
    plan = plan_history(daemon_set("a:5", limit=2), revs, [old_pod])
    # Four old revisions, two to keep: 1 is live, so 2 and 3 go.
    assert [r["revision"] for r in plan.delete] == [2, 3]
    assert plan_history(daemon_set("a:5"), revs, []).delete == []  # the default limit is 10
    assert [r["revision"] for r in plan_history(daemon_set("a:5", limit=0), revs, []).delete] == [1, 2, 3, 4]


def test_revision_data_does_not_alias_the_template() -> None:
    ds = daemon_set("a:1")
    data = revision_data(ds["spec"]["template"])
    data["spec"]["template"]["spec"]["containers"][0]["image"] = "b"
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == "a:1"
