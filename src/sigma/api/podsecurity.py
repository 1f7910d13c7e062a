"""Pod security admission: the namespace label ``pod-security.kubernetes.io/enforce`` decides
which pods it accepts, on the Pod Security Standards' levels.

- ``privileged``: anything.
- ``baseline`` (Sigma's default for a namespace without the label): no privileged containers,
  no host namespaces (hostNetwork, hostPID, hostIPC), no hostPath volumes, and no capability
  added beyond the default set. Root is allowed.
- ``restricted``: baseline, and no root: runAsNonRoot must be true (on the pod, or on every
  container) and runAsUser must not be 0 anywhere; no privilege escalation, no capability
  added but NET_BIND_SERVICE.

Root matters most for the process runtime, whose containers see the host's filesystem: it runs
a pod as nobody unless the pod's runAsUser says otherwise (sigma.agent.runtime.process), so
asking for root is asking for the machine, and only namespaces at baseline or privileged may.

The default is baseline rather than Kubernetes' privileged: a pod that could take over its
machine is refused unless the namespace says so. Refusals list every violation, in the words
of Kubernetes ("violates PodSecurity "baseline:latest": privileged (container "c" must not
set securityContext.privileged=true)"), and the 403's details.causes name each offending
field (``spec.containers[0].securityContext.runAsUser``).
"""

from __future__ import annotations

from typing import Any

from sigma.api.errors import ApiError, Cause
from sigma.api.registry import Registry
from sigma.api.resources import resource

NAMESPACES = resource("namespaces")
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")
DEFAULT_LEVEL = "baseline"
BASELINE_CAPS = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                           "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
RESTRICTED_CAPS = frozenset({"NET_BIND_SERVICE"})


# A violation: what Kubernetes says about it, and the field path of the offending field.
Violation = tuple[str, str]


def _containers(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every container with its field path (spec.initContainers[0], spec.containers[1])."""
    return [(f"spec.{key}[{i}]", c) for key in ("initContainers", "containers")
            for i, c in enumerate(spec.get(key) or []) if isinstance(c, dict)]


def _baseline(spec: dict[str, Any]) -> list[Violation]:
    out = []
    hosts = [f for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f)]
    if hosts:
        out.append((f"host namespaces ({', '.join(f'{h}=true' for h in hosts)})", f"spec.{hosts[0]}"))
    volumes = [(i, v) for i, v in enumerate(spec.get("volumes") or []) if isinstance(v, dict) and "hostPath" in v]
    if volumes:
        out.append((f"hostPath volumes (volumes {', '.join(repr(v.get('name', '')) for _, v in volumes)})",
                    f"spec.volumes[{volumes[0][0]}].hostPath"))
    for path, c in _containers(spec):
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            out.append((f'privileged (container "{c.get("name")}" must not set securityContext.privileged=true)',
                        f"{path}.securityContext.privileged"))
        added = set((sc.get("capabilities") or {}).get("add") or []) - BASELINE_CAPS
        if added:
            out.append((f'non-default capabilities (container "{c.get("name")}" must not include '
                        f"{', '.join(sorted(added))} in securityContext.capabilities.add)",
                        f"{path}.securityContext.capabilities.add"))
    return out


def _restricted(spec: dict[str, Any]) -> list[Violation]:
    out = []
    pod_sc = spec.get("securityContext") or {}
    if pod_sc.get("runAsUser") == 0:
        out.append(("runAsUser=0 (pod must not set spec.securityContext.runAsUser=0)",
                    "spec.securityContext.runAsUser"))
    if pod_sc.get("runAsNonRoot") is False:
        out.append(("runAsNonRoot != true (pod must not set spec.securityContext.runAsNonRoot=false)",
                    "spec.securityContext.runAsNonRoot"))
    for path, c in _containers(spec):
        own, name = c.get("securityContext") or {}, c.get("name")
        sc = {**pod_sc, **own}
        if own.get("runAsUser") == 0:
            out.append((f'runAsUser=0 (container "{name}" must not set {path}.securityContext.runAsUser=0)',
                        f"{path}.securityContext.runAsUser"))
        if own.get("runAsNonRoot") is False:
            out.append((f'runAsNonRoot != true (container "{name}" must not set '
                        f"{path}.securityContext.runAsNonRoot=false)", f"{path}.securityContext.runAsNonRoot"))
        elif sc.get("runAsNonRoot") is not True:
            # Kubernetes' rule: an image's user is only known on the node, so the pod must say.
            out.append((f'runAsNonRoot != true (pod or container "{name}" must set '
                        "securityContext.runAsNonRoot=true)", f"{path}.securityContext.runAsNonRoot"))
        if sc.get("allowPrivilegeEscalation") is True:
            out.append((f'allowPrivilegeEscalation != false (container "{name}" must not set '
                        "securityContext.allowPrivilegeEscalation=true)",
                        f"{path}.securityContext.allowPrivilegeEscalation"))
        added = set((sc.get("capabilities") or {}).get("add") or []) - RESTRICTED_CAPS
        if added:
            out.append((f'unrestricted capabilities (container "{name}" must not add {", ".join(sorted(added))})',
                        f"{path}.securityContext.capabilities.add"))
    return out


def field_violations(level: str, spec: dict[str, Any]) -> list[Violation]:
    """What ``spec`` does that ``level`` does not allow, each with its field path."""
    if level == "privileged":
        return []
    found = _baseline(spec)
    return found + _restricted(spec) if level == "restricted" else found


def violations(level: str, spec: dict[str, Any]) -> list[str]:
    """What ``spec`` does that ``level`` does not allow (pure: for tests and tools)."""
    return [message for message, _ in field_violations(level, spec)]


def namespace_level(namespace: dict[str, Any] | None) -> str:
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    level = labels.get(ENFORCE_LABEL, DEFAULT_LEVEL)
    return level if level in LEVELS else DEFAULT_LEVEL


def admit_pod(registry: Registry) -> Any:
    def hook(pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        if old is not None:
            return  # the fields checked here cannot change after creation
        ns_name = pod["metadata"].get("namespace") or ""
        level = namespace_level(registry.namespace(ns_name))
        found = field_violations(level, pod.get("spec") or {})
        if found:
            name = pod["metadata"].get("name", "")
            # The least level that admits the pod: root needs baseline, the rest privileged.
            needed = "baseline" if not field_violations("baseline", pod.get("spec") or {}) else "privileged"
            raise ApiError(403, "Forbidden", f'pods "{name}" is forbidden: violates PodSecurity "{level}:latest": '
                           f"{', '.join(m for m, _ in found)} (namespace {ns_name} enforces {level}; label it "
                           f"{ENFORCE_LABEL}={needed} to allow this)", kind="pods", name=name,
                           causes=[Cause(path, message, "FieldValueForbidden") for message, path in found])

    return hook


def install(registry: Registry) -> None:
    registry.add_admission("Pod", admit_pod(registry))
