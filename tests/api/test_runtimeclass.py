"""RuntimeClass, pure: validation, and what admission does to a pod that names a class
(overhead, node selector and tolerations merged as Kubernetes' admission plugin does), and the
namespace sandbox policy."""

from __future__ import annotations

from typing import Any

import pytest

from sigma.api.runtimeclass import (
    DEFAULT_CLASS_LABEL,
    REQUIRE_SANDBOX_LABEL,
    Refused,
    apply_runtime_class,
    builtin_class,
    merge_tolerations,
    namespace_policy,
    validate_runtime_class,
)


def rc(handler: str = "runsc", **more: Any) -> dict[str, Any]:
    return {"metadata": {"name": "gvisor"}, "handler": handler, **more}


def fields(causes: list[Any]) -> list[tuple[str, str]]:
    return [(c.field, c.message) for c in causes]


def test_a_handler_is_a_required_dns_label_that_never_changes() -> None:
    assert validate_runtime_class(rc(), None) == []
    assert fields(validate_runtime_class(rc(""), None)) == [("handler", "Required value")]
    (field, message), = fields(validate_runtime_class(rc("Run_SC"), None))
    assert field == "handler" and message.startswith('Invalid value: "Run_SC": a lowercase RFC 1123 label')
    assert fields(validate_runtime_class(rc("crun"), rc("runsc"))) == [
        ("handler", 'Invalid value: "crun": field is immutable')]


def test_overhead_quantities_and_scheduling_are_checked() -> None:
    bad = rc(overhead={"podFixed": {"cpu": "-1", "memory": "lots"}},
             scheduling={"nodeSelector": {"bad key!": "x"}, "tolerations": [{"operator": "Maybe"}]})
    found = dict(fields(validate_runtime_class(bad, None)))
    assert found["overhead.podFixed[cpu]"] == "Invalid value: '-1': must be greater than or equal to 0"
    assert "overhead.podFixed[memory]" in found
    assert "scheduling.nodeSelector" in found
    assert found["scheduling.tolerations[0].operator"].startswith('Unsupported value: "Maybe"')


def test_the_class_sets_overhead_and_merges_scheduling() -> None:
    spec: dict[str, Any] = {"runtimeClassName": "gvisor", "nodeSelector": {"zone": "a"},
                            "tolerations": [{"key": "k", "operator": "Exists"}]}
    cls = rc(overhead={"podFixed": {"cpu": "250m", "memory": "64Mi"}},
             scheduling={"nodeSelector": {"sigma.io/runtime-handler.runsc": "true"},
                         "tolerations": [{"key": "k", "operator": "Exists"}, {"key": "sandbox", "effect": "NoSchedule",
                                                                               "operator": "Exists"}]})
    apply_runtime_class(spec, cls)
    assert spec["overhead"] == {"cpu": "250m", "memory": "64Mi"}
    assert spec["nodeSelector"] == {"zone": "a", "sigma.io/runtime-handler.runsc": "true"}
    assert [t["key"] for t in spec["tolerations"]] == ["k", "sandbox"]  # the duplicate once


def test_overhead_the_user_set_must_be_the_classs() -> None:
    cls = rc(overhead={"podFixed": {"cpu": "1"}})
    same: dict[str, Any] = {"runtimeClassName": "gvisor", "overhead": {"cpu": "1000m"}}
    apply_runtime_class(same, cls)  # semantically equal: accepted
    with pytest.raises(Refused, match="Pod's Overhead doesn't match RuntimeClass's defined Overhead"):
        apply_runtime_class({"runtimeClassName": "gvisor", "overhead": {"cpu": "2"}}, cls)
    with pytest.raises(Refused, match="without corresponding RuntimeClass defined Overhead"):
        apply_runtime_class({"runtimeClassName": "gvisor", "overhead": {"cpu": "2"}}, rc())
    with pytest.raises(Refused, match=r"^pod rejected: Pod Overhead set without corresponding RuntimeClass$"):
        apply_runtime_class({"overhead": {"cpu": "2"}}, None)


def test_unknown_class_and_selector_conflict_are_refused() -> None:
    with pytest.raises(Refused, match=r'^pod rejected: RuntimeClass "nope" not found$'):
        apply_runtime_class({"runtimeClassName": "nope"}, None)
    spec = {"runtimeClassName": "runsc", "nodeSelector": {"sigma.io/runtime-handler.runsc": "false"}}
    with pytest.raises(Refused, match=r"conflict: runtimeClass.scheduling.nodeSelector\[sigma.io/runtime-handler"
                                      r".runsc\] = true; pod.spec.nodeSelector\[sigma.io/runtime-handler.runsc\]"
                                      " = false"):
        apply_runtime_class(spec, builtin_class("runsc", "runsc", ""))


def test_a_pod_without_class_changes_nothing() -> None:
    spec: dict[str, Any] = {"containers": []}
    apply_runtime_class(spec, None)
    assert spec == {"containers": []}


HANDLERS = {"runc": "runc", "runsc": "runsc", "gvisor": "runsc", "lxc": "lxc"}


def test_namespace_default_class_applies_to_pods_naming_none() -> None:
    spec: dict[str, Any] = {}
    namespace_policy(spec, "t", {DEFAULT_CLASS_LABEL: "gvisor"}, HANDLERS)
    assert spec["runtimeClassName"] == "gvisor"
    named = {"runtimeClassName": "runc"}
    namespace_policy(named, "t", {DEFAULT_CLASS_LABEL: "gvisor"}, HANDLERS)
    assert named["runtimeClassName"] == "runc"


def test_require_sandbox_refuses_unsandboxed_handlers_naming_the_label() -> None:
    labels = {REQUIRE_SANDBOX_LABEL: "true"}
    for ok in ("runsc", "gvisor"):
        namespace_policy({"runtimeClassName": ok}, "t", labels, HANDLERS)
    for name in ("runc", "lxc", "", "unknown"):
        with pytest.raises(Refused, match=f'namespace "t" has label {REQUIRE_SANDBOX_LABEL}=true'):
            namespace_policy({"runtimeClassName": name} if name else {}, "t", labels, HANDLERS)
    # With a sandboxed default, a pod naming no class is admitted under it.
    spec: dict[str, Any] = {}
    namespace_policy(spec, "t", {**labels, DEFAULT_CLASS_LABEL: "runsc"}, HANDLERS)
    assert spec["runtimeClassName"] == "runsc"
    # The label is "true" or it is off.
    namespace_policy({"runtimeClassName": "runc"}, "t", {REQUIRE_SANDBOX_LABEL: "false"}, HANDLERS)


def test_merge_tolerations_keeps_each_distinct_one_once() -> None:
    a = [{"key": "x", "operator": "Equal", "value": "1", "effect": "NoSchedule"}]
    b = [{"key": "x", "value": "1", "effect": "NoSchedule"}, {"key": "x", "value": "2"}]
    assert merge_tolerations(a, b) == [a[0], {"key": "x", "value": "2"}]
