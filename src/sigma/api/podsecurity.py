"""Pod security admission: the namespace label ``pod-security.kubernetes.io/enforce`` decides
which pods it accepts, on the Pod Security Standards' levels.

- ``privileged``: anything.
- ``baseline`` (Sigma's default for a namespace without the label): no privileged containers,
  no host namespaces (hostNetwork, hostPID, hostIPC), no hostPath volumes, and no capability
  added beyond the default set. Root is allowed.
- ``restricted``: baseline, and no root (runAsUser 0 or runAsNonRoot false), no privilege
  escalation, no capability added but NET_BIND_SERVICE.

The default is baseline rather than Kubernetes' privileged: a pod that could take over its
machine is refused unless the namespace says so. Refusals list every violation, in the words
of Kubernetes ("violates PodSecurity "baseline:latest": privileged (container "c" must not
set securityContext.privileged=true)").
"""

from __future__ import annotations

from typing import Any

from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.api.resources import resource

NAMESPACES = resource("namespaces")
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")
DEFAULT_LEVEL = "baseline"
BASELINE_CAPS = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                           "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
RESTRICTED_CAPS = frozenset({"NET_BIND_SERVICE"})


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for key in ("initContainers", "containers") for c in spec.get(key) or [] if isinstance(c, dict)]


def _baseline(spec: dict[str, Any]) -> list[str]:
    out = []
    hosts = [f for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f)]
    if hosts:
        out.append(f"host namespaces ({', '.join(f'{h}=true' for h in hosts)})")
    host_paths = [v.get("name", "") for v in spec.get("volumes") or [] if isinstance(v, dict) and "hostPath" in v]
    if host_paths:
        out.append(f"hostPath volumes (volumes {', '.join(repr(v) for v in host_paths)})")
    for c in _containers(spec):
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            out.append(f'privileged (container "{c.get("name")}" must not set securityContext.privileged=true)')
        added = set((sc.get("capabilities") or {}).get("add") or []) - BASELINE_CAPS
        if added:
            out.append(f'non-default capabilities (container "{c.get("name")}" must not include '
                       f"{', '.join(sorted(added))} in securityContext.capabilities.add)")
    return out


def _restricted(spec: dict[str, Any]) -> list[str]:
    out = []
    pod_sc = spec.get("securityContext") or {}
    for c in _containers(spec):
        sc = {**pod_sc, **(c.get("securityContext") or {})}
        name = c.get("name")
        if sc.get("runAsUser") == 0 or sc.get("runAsNonRoot") is False:
            out.append(f'runAsUser=0 / runAsNonRoot=false (container "{name}" must not run as root)')
        if sc.get("allowPrivilegeEscalation") is True:
            out.append(f'allowPrivilegeEscalation != false (container "{name}")')
        added = set((sc.get("capabilities") or {}).get("add") or []) - RESTRICTED_CAPS
        if added:
            out.append(f'unrestricted capabilities (container "{name}" must not add {", ".join(sorted(added))})')
    return out


def violations(level: str, spec: dict[str, Any]) -> list[str]:
    """What ``spec`` does that ``level`` does not allow (pure: for tests and tools)."""
    if level == "privileged":
        return []
    found = _baseline(spec)
    return found + _restricted(spec) if level == "restricted" else found


def namespace_level(namespace: dict[str, Any] | None) -> str:
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    level = labels.get(ENFORCE_LABEL, DEFAULT_LEVEL)
    return level if level in LEVELS else DEFAULT_LEVEL


def admit_pod(registry: Registry) -> Any:
    def hook(pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        if old is not None:
            return  # the fields checked here cannot change after creation
        ns_name = pod["metadata"].get("namespace") or ""
        try:
            namespace: dict[str, Any] | None = registry.get(NAMESPACES, None, ns_name)
        except ApiError:
            namespace = None
        level = namespace_level(namespace)
        found = violations(level, pod.get("spec") or {})
        if found:
            name = pod["metadata"].get("name", "")
            raise ApiError(403, "Forbidden", f'pods "{name}" is forbidden: violates PodSecurity "{level}:latest": '
                           f"{', '.join(found)} (namespace {ns_name} enforces {level}; label it "
                           f"{ENFORCE_LABEL}=privileged to allow this)", kind="pods", name=name)

    return hook


def install(registry: Registry) -> None:
    registry.add_admission("Pod", admit_pod(registry))
