"""Pod Security Standards field by field: for each control, a pod that breaks it is refused at
the levels that forbid it, naming the field, and admitted at the least level that allows it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from sigma.api.errors import ApiError
from sigma.api.podsecurity import (
    ENFORCE_LABEL,
    admit_namespace,
    admit_pod,
    field_violations,
    least_level,
    namespace_level,
    violations,
)

LEVELS = ("restricted", "baseline", "privileged")  # from the strictest


def restricted_pod() -> dict[str, Any]:
    """A pod that every level admits: what the restricted level asks for and nothing more."""
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": "busybox", "securityContext": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
        "volumes": [{"name": "scratch", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "x"}}]}}


Mutation = Callable[[dict[str, Any]], None]


def pod_sc(**fields: Any) -> Mutation:
    return lambda pod: pod["spec"]["securityContext"].update(fields)


def container_sc(**fields: Any) -> Mutation:
    return lambda pod: pod["spec"]["containers"][0]["securityContext"].update(fields)


def spec(**fields: Any) -> Mutation:
    return lambda pod: pod["spec"].update(fields)


def drop_container_field(name: str) -> Mutation:
    return lambda pod: pod["spec"]["containers"][0]["securityContext"].pop(name)


def drop_pod_field(name: str) -> Mutation:
    return lambda pod: pod["spec"]["securityContext"].pop(name)


def extra_container(key: str, **sc: Any) -> Mutation:
    """Another container (the first of its kind for init and ephemeral containers)."""
    def apply(pod: dict[str, Any]) -> None:
        base = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
        pod["spec"].setdefault(key, []).append({"name": "extra", "image": "busybox",
                                                "securityContext": {**base, **sc}})
    return apply


def annotation(key: str, value: str) -> Mutation:
    return lambda pod: pod["metadata"].setdefault("annotations", {}).update({key: value})


def volume(**source: Any) -> Mutation:
    return lambda pod: pod["spec"]["volumes"].append({"name": "v", **source})


def port(host_port: int) -> Mutation:
    return lambda pod: pod["spec"]["containers"][0].update(ports=[{"containerPort": 80, "hostPort": host_port}])


def no_image() -> Mutation:
    def apply(pod: dict[str, Any]) -> None:
        c = pod["spec"]["containers"][0]
        c.pop("image")
        c["command"] = ["sleep", "1"]
    return apply


def both(*mutations: Mutation) -> Mutation:
    def apply(pod: dict[str, Any]) -> None:
        for m in mutations:
            m(pod)
    return apply


C0 = "spec.containers[0].securityContext"
PSC = "spec.securityContext"

# (what, the change, the least level that admits it, the field named by the refusal)
CASES: list[tuple[str, Mutation, str, str | None]] = [
    # baseline's controls: refused at baseline and restricted
    ("hostProcess on the pod", pod_sc(windowsOptions={"hostProcess": True}), "privileged",
     f"{PSC}.windowsOptions.hostProcess"),
    ("hostProcess on a container", container_sc(windowsOptions={"hostProcess": True}), "privileged",
     f"{C0}.windowsOptions.hostProcess"),
    ("hostProcess false", container_sc(windowsOptions={"hostProcess": False}), "restricted", None),
    ("hostNetwork", spec(hostNetwork=True), "privileged", "spec.hostNetwork"),
    ("hostPID", spec(hostPID=True), "privileged", "spec.hostPID"),
    ("hostIPC", spec(hostIPC=True), "privileged", "spec.hostIPC"),
    ("host namespaces false", spec(hostNetwork=False, hostPID=False, hostIPC=False), "restricted", None),
    ("privileged container", container_sc(privileged=True), "privileged", f"{C0}.privileged"),
    ("privileged init container", extra_container("initContainers", privileged=True), "privileged",
     "spec.initContainers[0].securityContext.privileged"),
    ("privileged ephemeral container", extra_container("ephemeralContainers", privileged=True), "privileged",
     "spec.ephemeralContainers[0].securityContext.privileged"),
    ("privileged on the pod, which the agent applies to every container", pod_sc(privileged=True), "privileged",
     f"{PSC}.privileged"),
    ("privileged as a string", container_sc(privileged="true"), "privileged", f"{C0}.privileged"),
    ("privileged false", container_sc(privileged=False), "restricted", None),
    ("a capability beyond the default set", container_sc(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
     "privileged", f"{C0}.capabilities.add"),
    ("capabilities added on the pod", both(drop_container_field("capabilities"),
                                           pod_sc(capabilities={"add": ["NET_ADMIN"]})), "privileged",
     f"{PSC}.capabilities.add"),
    # The merge is per field: a container's own capabilities replace the pod's whole object.
    ("capabilities on the pod overridden by the container's", pod_sc(capabilities={"add": ["NET_ADMIN"]}),
     "restricted", None),
    ("capabilities.add not a list", container_sc(capabilities={"drop": ["ALL"], "add": "SYS_ADMIN"}),
     "privileged", f"{C0}.capabilities.add"),
    ("a default capability", container_sc(capabilities={"drop": ["ALL"], "add": ["CHOWN"]}), "baseline",
     f"{C0}.capabilities.add"),
    ("hostPath volume", volume(hostPath={"path": "/"}), "privileged", "spec.volumes[2].hostPath"),
    ("hostPort", port(8080), "privileged", "spec.containers[0].ports[0].hostPort"),
    ("hostPort 0", port(0), "restricted", None),
    ("AppArmor Unconfined on the pod", pod_sc(appArmorProfile={"type": "Unconfined"}), "privileged",
     f"{PSC}.appArmorProfile.type"),
    ("AppArmor Unconfined on a container", container_sc(appArmorProfile={"type": "Unconfined"}), "privileged",
     f"{C0}.appArmorProfile.type"),
    ("AppArmor RuntimeDefault", container_sc(appArmorProfile={"type": "RuntimeDefault"}), "restricted", None),
    ("AppArmor Localhost", pod_sc(appArmorProfile={"type": "Localhost", "localhostProfile": "p"}), "restricted",
     None),
    ("AppArmor annotation unconfined", annotation("container.apparmor.security.beta.kubernetes.io/c", "unconfined"),
     "privileged", "metadata.annotations[container.apparmor.security.beta.kubernetes.io/c]"),
    ("AppArmor annotation localhost", annotation("container.apparmor.security.beta.kubernetes.io/c", "localhost/p"),
     "restricted", None),
    ("SELinux type spc_t", container_sc(seLinuxOptions={"type": "spc_t"}), "privileged",
     f"{C0}.seLinuxOptions.type"),
    ("SELinux type on the pod", pod_sc(seLinuxOptions={"type": "unconfined_t"}), "privileged",
     f"{PSC}.seLinuxOptions.type"),
    ("SELinux user", pod_sc(seLinuxOptions={"user": "system_u"}), "privileged", f"{PSC}.seLinuxOptions.user"),
    ("SELinux role", container_sc(seLinuxOptions={"role": "system_r"}), "privileged", f"{C0}.seLinuxOptions.role"),
    ("SELinux container types and level", container_sc(seLinuxOptions={"type": "container_engine_t",
                                                                        "level": "s0:c1,c2"}), "restricted", None),
    ("procMount Unmasked", container_sc(procMount="Unmasked"), "privileged", f"{C0}.procMount"),
    ("procMount Default", container_sc(procMount="Default"), "restricted", None),
    ("seccomp Unconfined on the pod", pod_sc(seccompProfile={"type": "Unconfined"}), "privileged",
     f"{PSC}.seccompProfile.type"),
    ("seccomp Unconfined on a container", container_sc(seccompProfile={"type": "Unconfined"}), "privileged",
     f"{C0}.seccompProfile.type"),
    ("an unsafe sysctl", pod_sc(sysctls=[{"name": "net.ipv4.tcp_keepalive_time", "value": "60"},
                                         {"name": "kernel.msgmax", "value": "1"}]), "privileged",
     f"{PSC}.sysctls[1].name"),
    ("safe sysctls", pod_sc(sysctls=[{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"},
                                     {"name": "kernel.shm_rmid_forced", "value": "1"}]), "restricted", None),
    # restricted's controls: refused at restricted only
    ("an nfs volume", volume(nfs={"server": "s", "path": "/"}), "baseline", "spec.volumes[2].nfs"),
    ("restricted volume types", volume(projected={"sources": []}), "restricted", None),
    ("allowPrivilegeEscalation unset", drop_container_field("allowPrivilegeEscalation"), "baseline",
     f"{C0}.allowPrivilegeEscalation"),
    ("allowPrivilegeEscalation true", container_sc(allowPrivilegeEscalation=True), "baseline",
     f"{C0}.allowPrivilegeEscalation"),
    ("allowPrivilegeEscalation true on the pod", both(drop_container_field("allowPrivilegeEscalation"),
                                                      pod_sc(allowPrivilegeEscalation=True)), "baseline",
     f"{PSC}.allowPrivilegeEscalation"),
    ("runAsNonRoot unset", drop_pod_field("runAsNonRoot"), "baseline", f"{C0}.runAsNonRoot"),
    ("runAsNonRoot false on the pod", pod_sc(runAsNonRoot=False), "baseline", f"{PSC}.runAsNonRoot"),
    ("runAsNonRoot false on a container", container_sc(runAsNonRoot=False), "baseline", f"{C0}.runAsNonRoot"),
    ("runAsNonRoot on every container instead", both(drop_pod_field("runAsNonRoot"),
                                                     container_sc(runAsNonRoot=True)), "restricted", None),
    ("runAsUser 0 on the pod", pod_sc(runAsUser=0), "baseline", f"{PSC}.runAsUser"),
    ("runAsUser 0 on a container", container_sc(runAsUser=0), "baseline", f"{C0}.runAsUser"),
    ("runAsUser 0 on an init container", extra_container("initContainers", runAsUser=0), "baseline",
     "spec.initContainers[0].securityContext.runAsUser"),
    ("runAsUser 1000", pod_sc(runAsUser=1000), "restricted", None),
    ("seccomp unset", drop_pod_field("seccompProfile"), "baseline", f"{C0}.seccompProfile.type"),
    ("seccomp on every container instead", both(drop_pod_field("seccompProfile"),
                                                container_sc(seccompProfile={"type": "Localhost",
                                                                             "localhostProfile": "p.json"})),
     "restricted", None),
    ("capabilities not dropping ALL", container_sc(capabilities={"drop": ["NET_RAW"]}), "baseline",
     f"{C0}.capabilities.drop"),
    ("NET_BIND_SERVICE added", container_sc(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}),
     "restricted", None),
    # Kubernetes lets an image run with group 0; a host command would get root's group on the host.
    ("runAsGroup 0 with an image", pod_sc(runAsUser=1000, runAsGroup=0), "restricted", None),
    ("runAsGroup 0 for a host command", both(no_image(), pod_sc(runAsUser=1000, runAsGroup=0)), "baseline",
     f"{PSC}.runAsGroup"),
    ("container runAsGroup 0 for a host command", both(no_image(), container_sc(runAsGroup=0)), "baseline",
     f"{C0}.runAsGroup"),
    ("fsGroup 0 for a host command", both(no_image(), pod_sc(fsGroup=0)), "baseline", f"{PSC}.fsGroup"),
    ("supplementalGroups 0 for a host command", both(no_image(), pod_sc(supplementalGroups=[5, 0])), "baseline",
     f"{PSC}.supplementalGroups[1]"),
    ("a host command as 1000:1000", both(no_image(), pod_sc(runAsUser=1000, runAsGroup=1000)), "restricted",
     None),
]


def changed(mutation: Mutation) -> dict[str, Any]:
    pod = restricted_pod()
    mutation(pod)
    return pod


def test_the_reference_pod_is_admitted_everywhere() -> None:
    pod = restricted_pod()
    for level in LEVELS:
        assert field_violations(level, pod["spec"]) == []


@pytest.mark.parametrize(("what", "mutation", "least", "field"), CASES, ids=[c[0] for c in CASES])
def test_each_field_at_each_level(what: str, mutation: Mutation, least: str, field: str | None) -> None:
    pod = changed(mutation)
    annotations = pod["metadata"].get("annotations")
    assert least_level(pod["spec"], annotations) == least
    for level in LEVELS:
        found = field_violations(level, pod["spec"], annotations)
        hook = admit_pod(Namespaces(level))  # type: ignore[arg-type]  # only namespace() is used
        if LEVELS.index(level) >= LEVELS.index(least):
            assert found == [], (level, found)
            hook(copy.deepcopy(pod), None)
            continue
        assert field in [path for _, path in found], (level, found)
        assert len(found) == len(set(found))
        with pytest.raises(ApiError) as refused:
            hook(copy.deepcopy(pod), None)
        assert refused.value.code == 403
        assert field in [c.field for c in refused.value.causes]
        assert f'violates PodSecurity "{level}:latest"' in refused.value.message
        assert f"{ENFORCE_LABEL}={least} to allow this" in refused.value.message


def test_the_reported_attack_is_refused_at_restricted_and_baseline() -> None:
    """runAsUser 1000, runAsGroup 0 and a pod-level privileged: true were admitted under restricted."""
    attack = {"securityContext": {"runAsUser": 1000, "runAsGroup": 0, "runAsNonRoot": True, "privileged": True},
              "containers": [{"name": "c", "command": ["sh"]}]}
    for level in ("restricted", "baseline"):
        paths = [path for _, path in field_violations(level, attack)]
        assert "spec.securityContext.privileged" in paths
    assert "spec.securityContext.runAsGroup" in [p for _, p in field_violations("restricted", attack)]
    assert least_level(attack) == "privileged"


def test_messages_are_in_kubernetes_words() -> None:
    pod = changed(both(container_sc(privileged=True, allowPrivilegeEscalation=None), spec(hostNetwork=True,
                                                                                          hostPID=True)))
    found = violations("restricted", pod["spec"])
    assert 'privileged (container "c" must not set securityContext.privileged=true)' in found
    assert "host namespaces (hostNetwork=true, hostPID=true)" in found
    assert ('allowPrivilegeEscalation != false (container "c" must set '
            "securityContext.allowPrivilegeEscalation=false)") in found
    paths = [p for _, p in field_violations("baseline", pod["spec"])]
    assert paths.count("spec.hostNetwork") == 1 and paths.count("spec.hostPID") == 1
    pod_level = changed(pod_sc(privileged=True))
    assert violations("baseline", pod_level["spec"]) == [
        "privileged (pod must not set securityContext.privileged=true)"]


class Namespaces:
    def __init__(self, level: str | None) -> None:
        self.labels = {ENFORCE_LABEL: level} if level else {}

    def namespace(self, name: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "labels": self.labels}}


def test_admission_answers_403_with_a_cause_per_field_and_the_level_that_would_admit() -> None:
    hook = admit_pod(Namespaces("restricted"))  # type: ignore[arg-type]  # only namespace() is used
    pod = changed(both(container_sc(runAsUser=0), extra_container("containers", privileged=True)))
    with pytest.raises(ApiError) as refused:
        hook(pod, None)
    err = refused.value
    assert err.code == 403 and err.reason == "Forbidden"
    assert {c.field for c in err.causes} == {f"{C0}.runAsUser", "spec.containers[1].securityContext.privileged"}
    assert all(c.reason == "FieldValueForbidden" for c in err.causes)
    assert err.message.startswith('pods "p" is forbidden: violates PodSecurity "restricted:latest": ')
    assert f"label it {ENFORCE_LABEL}=privileged" in err.message
    root_only = changed(container_sc(runAsUser=0))
    with pytest.raises(ApiError) as refused:
        hook(root_only, None)
    assert f"label it {ENFORCE_LABEL}=baseline" in refused.value.message
    hook(restricted_pod(), None)


def test_updates_are_checked_only_when_what_is_checked_changes() -> None:
    hook = admit_pod(Namespaces("baseline"))  # type: ignore[arg-type]
    old = changed(container_sc(privileged=True))  # admitted when the namespace was privileged
    status_report = copy.deepcopy(old)
    status_report["status"] = {"phase": "Running"}
    hook(status_report, old)
    relabelled = copy.deepcopy(restricted_pod())
    annotation("container.apparmor.security.beta.kubernetes.io/c", "unconfined")(relabelled)
    with pytest.raises(ApiError) as refused:
        hook(relabelled, restricted_pod())
    assert [c.field for c in refused.value.causes] == [
        "metadata.annotations[container.apparmor.security.beta.kubernetes.io/c]"]


@pytest.mark.parametrize(("label", "level"), [(None, "baseline"), ("privileged", "privileged"),
                                              ("restricted", "restricted"), ("Privileged", "restricted"),
                                              ("bogus", "restricted")])
def test_a_label_that_names_no_level_fails_closed(label: str | None, level: str) -> None:
    assert namespace_level(Namespaces(label).namespace("x")) == level


def test_a_namespace_label_must_name_a_level() -> None:
    ns = Namespaces("privilegd").namespace("x")
    with pytest.raises(ApiError) as refused:
        admit_namespace(ns, None)
    assert refused.value.code == 422
    assert [c.field for c in refused.value.causes] == [f"metadata.labels[{ENFORCE_LABEL}]"]
    admit_namespace(Namespaces("restricted").namespace("x"), None)
    admit_namespace(ns, copy.deepcopy(ns))  # stored before the rule: left alone unless changed
