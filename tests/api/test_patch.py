"""The three PATCH formats as pure functions."""

from __future__ import annotations

import pytest

from sigma.api.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from sigma.api.schema import KIND_SCHEMAS

POD = KIND_SCHEMAS["Pod"]


def test_merge_patch_merges_maps_deletes_nulls_and_replaces_lists() -> None:
    target = {"a": {"b": 1, "c": 2}, "l": [1, 2], "x": 1}
    assert merge_patch(target, {"a": {"b": None, "d": 3}, "l": [3], "x": None}) == {"a": {"c": 2, "d": 3}, "l": [3]}
    assert target == {"a": {"b": 1, "c": 2}, "l": [1, 2], "x": 1}, "the target is not modified"


@pytest.mark.parametrize(("ops", "expected"), [
    ([{"op": "add", "path": "/a/-", "value": 3}], {"a": [1, 2, 3], "m": {"k": "v"}}),
    ([{"op": "remove", "path": "/a/0"}], {"a": [2], "m": {"k": "v"}}),
    ([{"op": "replace", "path": "/m/k", "value": "w"}], {"a": [1, 2], "m": {"k": "w"}}),
    ([{"op": "move", "from": "/m/k", "path": "/n"}], {"a": [1, 2], "m": {}, "n": "v"}),
    ([{"op": "copy", "from": "/a/1", "path": "/a/0"}], {"a": [2, 1, 2], "m": {"k": "v"}}),
    ([{"op": "add", "path": "/m/a~1b", "value": 1}], {"a": [1, 2], "m": {"k": "v", "a/b": 1}}),
], ids=["add appends", "remove drops an index", "replace changes a value", "move relocates",
        "copy inserts", "pointers unescape slashes"])
def test_json_patch_applies_each_operation(ops: list, expected: dict) -> None:
    assert json_patch({"a": [1, 2], "m": {"k": "v"}}, ops) == expected


@pytest.mark.parametrize("ops", [
    [{"op": "remove", "path": "/nope"}],
    [{"op": "test", "path": "/a/0", "value": 9}],
    [{"op": "frobnicate", "path": "/a"}],
    [{"op": "add", "path": "/a/7", "value": 1}],
    {"op": "add"},
], ids=["a missing path", "a failed test", "an unknown op", "an index out of range", "not a list"])
def test_json_patch_refuses(ops: object) -> None:
    with pytest.raises(PatchError):
        json_patch({"a": [1, 2]}, ops)


def test_strategic_merge_patch_merges_containers_by_name_and_env_by_name() -> None:
    pod = {"spec": {"containers": [
        {"name": "a", "image": "x:1", "env": [{"name": "K", "value": "1"}, {"name": "L", "value": "2"}]},
        {"name": "b", "image": "y:1"}]}}
    patch = {"spec": {"containers": [{"name": "a", "env": [{"name": "K", "value": "9"}]}]}}
    out = strategic_merge_patch(pod, patch, POD)
    assert out["spec"]["containers"][0]["env"] == [{"name": "K", "value": "9"}, {"name": "L", "value": "2"}]
    assert out["spec"]["containers"][1] == {"name": "b", "image": "y:1"}


def test_strategic_merge_patch_honours_delete_and_element_order_directives() -> None:
    pod = {"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}}
    patch = {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}],
                      "containers": [{"name": "b", "$patch": "delete"}]}}
    out = strategic_merge_patch(pod, patch, POD)
    assert [c["name"] for c in out["spec"]["containers"]] == ["c", "a"]


def test_strategic_merge_patch_replaces_lists_without_a_merge_key() -> None:
    pod = {"spec": {"tolerations": [{"key": "a"}], "containers": [{"name": "a", "args": ["1", "2"]}]}}
    patch = {"spec": {"tolerations": [{"key": "b"}], "containers": [{"name": "a", "args": ["3"]}]}}
    out = strategic_merge_patch(pod, patch, POD)
    assert out["spec"]["tolerations"] == [{"key": "b"}]
    assert out["spec"]["containers"][0]["args"] == ["3"]


def test_strategic_merge_patch_deletes_from_primitive_merge_lists() -> None:
    obj = {"metadata": {"finalizers": ["a", "b"]}}
    out = strategic_merge_patch(obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}},
                                KIND_SCHEMAS["Pod"])
    assert out["metadata"]["finalizers"] == ["b"]


def test_strategic_merge_patch_replace_directive_swaps_a_whole_map() -> None:
    """What `kubectl rollout undo daemonset` sends: the revision's template, replacing the
    current one rather than merging into it (a field only the current one has goes)."""
    ds = {"spec": {"template": {"metadata": {"labels": {"app": "a", "tier": "x"}},
                                "spec": {"containers": [{"name": "m", "image": "a:2"}], "hostNetwork": True}},
                   "minReadySeconds": 5}}
    patch = {"spec": {"template": {"$patch": "replace", "metadata": {"labels": {"app": "a"}},
                                   "spec": {"containers": [{"name": "m", "image": "a:1"}]}}}}
    out = strategic_merge_patch(ds, patch, None)
    assert out == {"spec": {"template": {"metadata": {"labels": {"app": "a"}},
                                         "spec": {"containers": [{"name": "m", "image": "a:1"}]}},
                            "minReadySeconds": 5}}
