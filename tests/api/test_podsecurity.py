"""Pod security levels on root: what each level admits, and the field path of each refusal."""

from __future__ import annotations

from typing import Any

import pytest

from sigma.api.errors import ApiError
from sigma.api.podsecurity import ENFORCE_LABEL, admit_pod, field_violations, violations


def spec(pod_sc: dict[str, Any] | None = None, *containers: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"containers": [{"name": f"c{i}", "securityContext": sc}
                                          for i, sc in enumerate(containers or ({},))]}
    if pod_sc is not None:
        out["securityContext"] = pod_sc
    return out


def test_restricted_requires_run_as_non_root_on_the_pod_or_every_container() -> None:
    assert field_violations("restricted", spec({"runAsNonRoot": True}, {}, {})) == []
    assert field_violations("restricted", spec(None, {"runAsNonRoot": True}, {"runAsUser": 1000})) == [(
        'runAsNonRoot != true (pod or container "c1" must set securityContext.runAsNonRoot=true)',
        "spec.containers[1].securityContext.runAsNonRoot")]


def test_root_at_restricted_is_refused_naming_the_field() -> None:
    pod_root = field_violations("restricted", spec({"runAsUser": 0, "runAsNonRoot": True}))
    assert [path for _, path in pod_root] == ["spec.securityContext.runAsUser"]
    init = {"initContainers": [{"name": "setup", "securityContext": {"runAsUser": 0}}],
            "securityContext": {"runAsNonRoot": True}, "containers": [{"name": "main"}]}
    assert field_violations("restricted", init) == [(
        'runAsUser=0 (container "setup" must not set spec.initContainers[0].securityContext.runAsUser=0)',
        "spec.initContainers[0].securityContext.runAsUser")]
    explicit = field_violations("restricted", spec({"runAsNonRoot": True}, {"runAsNonRoot": False}))
    assert [path for _, path in explicit] == ["spec.containers[0].securityContext.runAsNonRoot"]


@pytest.mark.parametrize("level", ["baseline", "privileged"])
def test_root_is_allowed_below_restricted(level: str) -> None:
    assert violations(level, spec({"runAsUser": 0, "runAsNonRoot": False}, {"runAsUser": 0})) == []


def test_admission_answers_403_with_a_cause_per_field() -> None:
    class Namespaces:
        def namespace(self, name: str) -> dict[str, Any]:
            return {"metadata": {"name": name, "labels": {ENFORCE_LABEL: "restricted"}}}

    hook = admit_pod(Namespaces())  # type: ignore[arg-type]  # only namespace() is used
    pod = {"metadata": {"name": "r", "namespace": "locked"},
           "spec": spec({"runAsNonRoot": True}, {"runAsUser": 0}, {"privileged": True})}
    with pytest.raises(ApiError) as refused:
        hook(pod, None)
    err = refused.value
    assert err.code == 403 and err.reason == "Forbidden"
    assert {c.field for c in err.causes} == {"spec.containers[0].securityContext.runAsUser",
                                             "spec.containers[1].securityContext.privileged"}
    # A privileged container needs the privileged level, not just baseline.
    assert f"label it {ENFORCE_LABEL}=privileged" in err.message
    hook({"metadata": {"name": "ok", "namespace": "locked"}, "spec": spec({"runAsNonRoot": True})}, None)
