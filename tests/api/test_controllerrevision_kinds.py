"""ControllerRevision in the registry (in process): 422s naming the field, immutable data,
and the `kubectl get` columns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sigma.api.controllerrevision_kinds import controller_revision_row
from sigma.api.errors import ApiError
from sigma.client.local import LocalClient
from tests.registry_client import admitted_client


@pytest.fixture
def client() -> Iterator[LocalClient]:
    with admitted_client() as local:
        yield local


def revision(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "ds-abc"},
            **fields}


def causes(err: ApiError) -> list[tuple[str, str]]:
    return [(c.field, c.message) for c in err.causes]


def test_a_revision_is_stored_with_its_data_as_sent(client: LocalClient) -> None:
    data = {"spec": {"template": {"$patch": "replace", "spec": {"containers": [{"name": "m"}]}}}}
    made = client.create("controllerrevisions", revision(data=data, revision=3), "default")
    assert made["data"] == data and made["revision"] == 3


def test_revision_must_be_given_and_not_negative(client: LocalClient) -> None:
    with pytest.raises(ApiError) as missing:
        client.create("controllerrevisions", revision(data={}), "default")
    assert missing.value.code == 422 and ("revision", "Required value") in causes(missing.value)
    with pytest.raises(ApiError) as negative:
        client.create("controllerrevisions", revision(data={}, revision=-1), "default")
    assert ("revision", "Invalid value: -1: must be greater than or equal to 0") in causes(negative.value)


def test_data_is_required_and_immutable_while_revision_may_change(client: LocalClient) -> None:
    with pytest.raises(ApiError) as missing:
        client.create("controllerrevisions", revision(revision=1), "default")
    assert ("data", "Required value: data is mandatory") in causes(missing.value)
    made = client.create("controllerrevisions", revision(data={"a": 1}, revision=1), "default")
    renumbered = client.update("controllerrevisions", {**made, "revision": 4}, "default")
    assert renumbered["revision"] == 4
    with pytest.raises(ApiError) as changed:
        client.update("controllerrevisions", {**renumbered, "data": {"a": 2}}, "default")
    assert changed.value.code == 422
    assert causes(changed.value) == [("data", 'Invalid value: {"a": 2}: field is immutable')]


def test_the_controller_column_names_the_owning_kind_and_group() -> None:
    rev = revision(revision=2, data={})
    rev["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "logger",
                                           "uid": "u", "controller": True}]
    assert controller_revision_row(rev, 0.0)[:3] == ["ds-abc", "daemonset.apps/logger", 2]
    assert controller_revision_row(revision(revision=1, data={}), 0.0)[1] == "<none>"
