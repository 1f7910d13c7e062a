"""Pod security admission: the namespace label ``pod-security.kubernetes.io/enforce`` decides
which pods it accepts, on the Pod Security Standards' levels (Kubernetes' "latest" version),
field by field.

- ``privileged``: anything.
- ``baseline`` (Sigma's default for a namespace without the label): no hostProcess, no host
  namespaces (hostNetwork, hostPID, hostIPC), no privileged containers, no capability added
  beyond the default set, no hostPath volumes, no hostPort but 0, AppArmor only
  RuntimeDefault/Localhost, SELinux only the container types and no user or role, /proc mounted
  Default, seccomp not Unconfined, sysctls only from the safe set. Root is allowed.
- ``restricted``: baseline, and: volumes only of the restricted types (configMap, csi,
  downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected, secret),
  allowPrivilegeEscalation=false, runAsNonRoot=true (on the pod, or on every container),
  runAsUser never 0, seccomp RuntimeDefault or Localhost (on the pod, or on every container),
  capabilities dropping ALL and adding at most NET_BIND_SERVICE.

Every container counts: initContainers and ephemeralContainers as well as containers. The agent
applies a pod-level securityContext to each container with the container's own fields winning
(sigma.agent.runtime.hardening.security_fields), including fields Kubernetes only has on
containers (``privileged``, ``allowPrivilegeEscalation``, ``capabilities``, ``procMount``). So the
checks read the same merge: ``spec.securityContext.privileged: true`` is a privileged pod, and
its refusal names that field.

Sigma's own rule for the process runtime (a pod whose containers name no image runs a host
command, on the host's filesystem): at restricted, group 0 is refused too (runAsGroup,
fsGroup, supplementalGroups), since group root on the host's files is part of root. Root
itself stays allowed at baseline, as it is for images.

The default is baseline rather than Kubernetes' privileged: a pod that could take over its
machine is refused unless the namespace says so. A label value that is not a level is refused
on the Namespace (422), and one already stored enforces restricted (failing closed, as
Kubernetes does). Refusals list every violation, in the words of Kubernetes ("violates
PodSecurity "baseline:latest": privileged (container "c" must not set
securityContext.privileged=true)"), say which level would admit the pod, and the 403's
details.causes name each offending field (``spec.containers[0].securityContext.runAsUser``).
Pods made by controllers (Deployment, BatchJob) pass the same check when they are created; a
refusal shows on the owner as a FailedCreate Event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sigma.api import errors
from sigma.api.errors import ApiError, Cause
from sigma.api.registry import Registry
from sigma.api.resources import resource

NAMESPACES = resource("namespaces")
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")
DEFAULT_LEVEL = "baseline"
INVALID_LABEL_LEVEL = "restricted"
CONTAINER_KINDS = ("initContainers", "containers", "ephemeralContainers")

BASELINE_CAPS = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                           "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
RESTRICTED_CAPS = frozenset({"NET_BIND_SERVICE"})
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
PROFILE_TYPES = frozenset({"RuntimeDefault", "Localhost"})  # seccomp and AppArmor alike
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
RESTRICTED_VOLUMES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                "persistentVolumeClaim", "projected", "secret"})
POD_SC = "spec.securityContext"

# A violation: what Kubernetes says about it, and the field path of the offending field. One
# message may stand for several fields (host namespaces): each field is its own cause.
Violation = tuple[str, str]


@dataclass(frozen=True)
class _Container:
    path: str  # spec.containers[1]
    name: str
    own: dict[str, Any]  # its securityContext as written
    pod: dict[str, Any]  # the pod's securityContext

    def effective(self, field: str) -> tuple[Any, str]:
        """The value the agent applies (the container's, else the pod's) and where it is set."""
        if self.own.get(field) is not None:
            return self.own[field], f"{self.path}.securityContext.{field}"
        return self.pod.get(field), f"{POD_SC}.{field}"

    def who(self, where: str) -> str:
        return "pod" if where.startswith(POD_SC) else f'container "{self.name}"'


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _containers(spec: dict[str, Any]) -> list[_Container]:
    pod_sc = _dict(spec.get("securityContext"))
    return [_Container(f"spec.{key}[{i}]", str(c.get("name", "")), _dict(c.get("securityContext")), pod_sc)
            for key in CONTAINER_KINDS for i, c in enumerate(spec.get(key) or []) if isinstance(c, dict)]


def _names(value: Any) -> list[str]:
    """A capability list; anything that is not a list of names is one forbidden entry."""
    if value is None:
        return []
    if not isinstance(value, list):
        return [repr(value)]
    return [v if isinstance(v, str) else repr(v) for v in value]


def _quoted(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


# -- baseline ---------------------------------------------------------------------------


def _host_process(spec: dict[str, Any], containers: list[_Container]) -> Iterator[Violation]:
    if _dict(_dict(spec.get("securityContext")).get("windowsOptions")).get("hostProcess"):
        yield ("hostProcess (pod must not set securityContext.windowsOptions.hostProcess=true)",
               f"{POD_SC}.windowsOptions.hostProcess")
    for c in containers:
        if _dict(c.own.get("windowsOptions")).get("hostProcess"):
            yield (f'hostProcess (container "{c.name}" must not set securityContext.windowsOptions.hostProcess=true)',
                   f"{c.path}.securityContext.windowsOptions.hostProcess")


def _host_namespaces(spec: dict[str, Any]) -> Iterator[Violation]:
    hosts = [f for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f)]
    message = f"host namespaces ({', '.join(f'{h}=true' for h in hosts)})"
    for h in hosts:
        yield message, f"spec.{h}"


def _privileged(containers: list[_Container]) -> Iterator[Violation]:
    for c in containers:
        value, where = c.effective("privileged")
        if value:
            yield f"privileged ({c.who(where)} must not set securityContext.privileged=true)", where


def _capabilities(containers: list[_Container], refused: Callable[[str], bool], title: str) -> Iterator[Violation]:
    for c in containers:
        caps, where = c.effective("capabilities")
        added = [n for n in _names(_dict(caps).get("add")) if refused(n)]
        if added:
            yield (f"{title} ({c.who(where)} must not include {_quoted(added)} in securityContext.capabilities.add)",
                   f"{where}.add")


def _host_path(spec: dict[str, Any]) -> Iterator[Violation]:
    for i, v in enumerate(spec.get("volumes") or []):
        if isinstance(v, dict) and v.get("hostPath") is not None:
            yield f'hostPath volumes (volume "{v.get("name", "")}")', f"spec.volumes[{i}].hostPath"


def _host_ports(spec: dict[str, Any]) -> Iterator[Violation]:
    for key in CONTAINER_KINDS:
        for i, c in enumerate(spec.get(key) or []):
            for j, port in enumerate(_dict(c).get("ports") or []):
                host_port = _dict(port).get("hostPort")
                if host_port not in (None, 0):
                    yield (f'hostPort (container "{c.get("name", "")}" uses hostPort {host_port})',
                           f"spec.{key}[{i}].ports[{j}].hostPort")


def _profile_type(sc: dict[str, Any], field: str) -> Any:
    return _dict(sc.get(field)).get("type")


def _profile_types(spec: dict[str, Any], containers: list[_Container], field: str,
                   title: str) -> Iterator[Violation]:
    """A security profile (``appArmorProfile``, ``seccompProfile``) of the pod or of a
    container whose type is neither RuntimeDefault nor Localhost."""
    pod_type = _profile_type(_dict(spec.get("securityContext")), field)
    if pod_type is not None and pod_type not in PROFILE_TYPES:
        yield (f'{title} (pod must not set securityContext.{field}.type to "{pod_type}")', f"{POD_SC}.{field}.type")
    for c in containers:
        own = _profile_type(c.own, field)
        if own is not None and own not in PROFILE_TYPES:
            yield (f'{title} (container "{c.name}" must not set securityContext.{field}.type to "{own}")',
                   f"{c.path}.securityContext.{field}.type")


def _app_armor(spec: dict[str, Any], containers: list[_Container],
               annotations: dict[str, Any]) -> Iterator[Violation]:
    yield from _profile_types(spec, containers, "appArmorProfile", "forbidden AppArmor profile")
    for key, value in annotations.items():
        if key.startswith(APPARMOR_ANNOTATION) and not (value == "runtime/default" or
                                                         (isinstance(value, str) and value.startswith("localhost/"))):
            yield f'forbidden AppArmor profile ({key}="{value}")', f"metadata.annotations[{key}]"


def _se_linux(spec: dict[str, Any], containers: list[_Container]) -> Iterator[Violation]:
    contexts = [("pod", POD_SC, _dict(spec.get("securityContext")))]
    contexts += [(f'container "{c.name}"', f"{c.path}.securityContext", c.own) for c in containers]
    for who, path, sc in contexts:
        options = _dict(sc.get("seLinuxOptions"))
        if options.get("type") not in (None, *SELINUX_TYPES):
            yield (f'seLinuxOptions ({who} must not set securityContext.seLinuxOptions.type to "{options["type"]}")',
                   f"{path}.seLinuxOptions.type")
        for field in ("user", "role"):
            if options.get(field) not in (None, ""):
                yield (f"seLinuxOptions ({who} must not set securityContext.seLinuxOptions.{field})",
                       f"{path}.seLinuxOptions.{field}")


def _proc_mount(containers: list[_Container]) -> Iterator[Violation]:
    for c in containers:
        value, where = c.effective("procMount")
        if value not in (None, "Default"):
            yield f'procMount ({c.who(where)} must not set securityContext.procMount to "{value}")', where


def _seccomp_baseline(spec: dict[str, Any], containers: list[_Container]) -> Iterator[Violation]:
    yield from _profile_types(spec, containers, "seccompProfile", "seccompProfile")


def _sysctls(spec: dict[str, Any]) -> Iterator[Violation]:
    for i, sysctl in enumerate(_dict(spec.get("securityContext")).get("sysctls") or []):
        name = _dict(sysctl).get("name")
        if name not in SAFE_SYSCTLS:
            yield f"forbidden sysctls ({name})", f"{POD_SC}.sysctls[{i}].name"


def _baseline(spec: dict[str, Any], annotations: dict[str, Any]) -> list[Violation]:
    containers = _containers(spec)
    return [*_host_process(spec, containers), *_host_namespaces(spec), *_privileged(containers),
            *_capabilities(containers, lambda cap: cap not in BASELINE_CAPS, "non-default capabilities"),
            *_host_path(spec), *_host_ports(spec), *_app_armor(spec, containers, annotations),
            *_se_linux(spec, containers), *_proc_mount(containers), *_seccomp_baseline(spec, containers),
            *_sysctls(spec)]


# -- restricted -------------------------------------------------------------------------


def _volume_types(spec: dict[str, Any]) -> Iterator[Violation]:
    for i, v in enumerate(spec.get("volumes") or []):
        sources = _dict(v)
        for source in (k for k, given in sources.items() if k != "name" and k not in RESTRICTED_VOLUMES
                       and given is not None):
            if source == "hostPath":
                continue  # refused by baseline already, under its own name
            yield (f'restricted volume types (volume "{sources.get("name", "")}" uses restricted volume type '
                   f'"{source}")', f"spec.volumes[{i}].{source}")


def _privilege_escalation(containers: list[_Container]) -> Iterator[Violation]:
    for c in containers:
        value, where = c.effective("allowPrivilegeEscalation")
        if value is not False:
            path = where if value is not None else f"{c.path}.securityContext.allowPrivilegeEscalation"
            yield (f'allowPrivilegeEscalation != false (container "{c.name}" must set '
                   "securityContext.allowPrivilegeEscalation=false)", path)


def _run_as_non_root(spec: dict[str, Any], containers: list[_Container]) -> Iterator[Violation]:
    pod_sc = _dict(spec.get("securityContext"))
    if pod_sc.get("runAsNonRoot") is False:
        yield ("runAsNonRoot != true (pod must not set spec.securityContext.runAsNonRoot=false)",
               f"{POD_SC}.runAsNonRoot")
    for c in containers:
        path = f"{c.path}.securityContext.runAsNonRoot"
        if c.own.get("runAsNonRoot") is False:
            yield f'runAsNonRoot != true (container "{c.name}" must not set {path}=false)', path
        elif c.effective("runAsNonRoot")[0] is not True:
            # Kubernetes' rule: an image's user is only known on the node, so the pod must say.
            yield (f'runAsNonRoot != true (pod or container "{c.name}" must set securityContext.runAsNonRoot=true)',
                   path)


def _is_zero(value: Any) -> bool:
    return isinstance(value, int) and value == 0


def _run_as_user(spec: dict[str, Any], containers: list[_Container]) -> Iterator[Violation]:
    if _is_zero(_dict(spec.get("securityContext")).get("runAsUser")):
        yield "runAsUser=0 (pod must not set spec.securityContext.runAsUser=0)", f"{POD_SC}.runAsUser"
    for c in containers:
        if _is_zero(c.own.get("runAsUser")):
            path = f"{c.path}.securityContext.runAsUser"
            yield f'runAsUser=0 (container "{c.name}" must not set {path}=0)', path


def _seccomp_restricted(containers: list[_Container]) -> Iterator[Violation]:
    for c in containers:
        value, _ = c.effective("seccompProfile")
        if _dict(value).get("type") is None:  # a type outside the allowed ones is baseline's refusal
            yield (f'seccompProfile (pod or container "{c.name}" must set securityContext.seccompProfile.type to '
                   '"RuntimeDefault" or "Localhost")', f"{c.path}.securityContext.seccompProfile.type")


def _capabilities_restricted(containers: list[_Container]) -> Iterator[Violation]:
    for c in containers:
        caps, _ = c.effective("capabilities")
        if "ALL" not in _names(_dict(caps).get("drop")):
            yield (f'unrestricted capabilities (container "{c.name}" must set securityContext.capabilities.drop='
                   '["ALL"])', f"{c.path}.securityContext.capabilities.drop")
    # Adds outside the default set are baseline's refusal already; these are the rest.
    yield from _capabilities(containers, lambda cap: cap in BASELINE_CAPS - RESTRICTED_CAPS,
                             "unrestricted capabilities")


def runs_host_command(spec: dict[str, Any]) -> bool:
    """The agent runs the pod with the process runtime (sigma.agent.podspec.runtime_class)."""
    name = spec.get("runtimeClassName")
    if name:
        return bool(name == "process")
    return not any(_dict(c).get("image") for c in spec.get("containers") or [])


def _root_group(spec: dict[str, Any], containers: list[_Container]) -> Iterator[Violation]:
    """Sigma's rule: a host command runs on the host's files, where group 0 is root's."""
    if not runs_host_command(spec):
        return
    why = "a pod without an image runs on the host's filesystem, where group 0 is root's"
    pod_sc = _dict(spec.get("securityContext"))
    for field in ("runAsGroup", "fsGroup"):
        if _is_zero(pod_sc.get(field)):
            yield f"{field}=0 (pod must not set spec.securityContext.{field}=0: {why})", f"{POD_SC}.{field}"
    for i, gid in enumerate(pod_sc.get("supplementalGroups") or []):
        if _is_zero(gid):
            yield (f"supplementalGroups contains 0 (pod must not list group 0: {why})",
                   f"{POD_SC}.supplementalGroups[{i}]")
    for c in containers:
        if _is_zero(c.own.get("runAsGroup")):
            path = f"{c.path}.securityContext.runAsGroup"
            yield f'runAsGroup=0 (container "{c.name}" must not set {path}=0: {why})', path


def _restricted(spec: dict[str, Any]) -> list[Violation]:
    containers = _containers(spec)
    return [*_volume_types(spec), *_privilege_escalation(containers), *_run_as_non_root(spec, containers),
            *_run_as_user(spec, containers), *_seccomp_restricted(containers),
            *_capabilities_restricted(containers), *_root_group(spec, containers)]


# -- the admission ----------------------------------------------------------------------


def field_violations(level: str, spec: dict[str, Any], annotations: dict[str, Any] | None = None) -> list[Violation]:
    """What ``spec`` (and the pod's ``annotations``) does that ``level`` does not allow, each
    with its field path; a field named twice (a pod-level value every container inherits) once."""
    if level == "privileged":
        return []
    found = _baseline(spec, annotations or {})
    if level != "baseline":
        found += _restricted(spec)
    return list(dict.fromkeys(found))


def violations(level: str, spec: dict[str, Any], annotations: dict[str, Any] | None = None) -> list[str]:
    """What ``spec`` does that ``level`` does not allow, one message per violation (pure: for
    tests and tools)."""
    return list(dict.fromkeys(message for message, _ in field_violations(level, spec, annotations)))


def namespace_level(namespace: dict[str, Any] | None) -> str:
    """The namespace's level; a label that names no level enforces restricted."""
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    level = labels.get(ENFORCE_LABEL, DEFAULT_LEVEL)
    return level if level in LEVELS else INVALID_LABEL_LEVEL


def least_level(spec: dict[str, Any], annotations: dict[str, Any] | None = None) -> str:
    """The least level that admits the pod."""
    for level in ("restricted", "baseline"):
        if not field_violations(level, spec, annotations):
            return level
    return "privileged"


def _security_inputs(pod: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    annotations = _dict(_dict(pod.get("metadata")).get("annotations"))
    return pod.get("spec"), {k: v for k, v in annotations.items() if k.startswith(APPARMOR_ANNOTATION)}


def check_pod(level: str, pod: dict[str, Any]) -> None:
    """Raise the 403 Kubernetes answers when ``pod`` violates ``level``."""
    spec, annotations = _security_inputs(pod)
    spec = _dict(spec)
    found = field_violations(level, spec, annotations)
    if not found:
        return
    meta = _dict(pod.get("metadata"))
    name, ns_name = meta.get("name", ""), meta.get("namespace") or ""
    needed = least_level(spec, annotations)
    messages = ", ".join(dict.fromkeys(m for m, _ in found))
    raise ApiError(403, "Forbidden", f'pods "{name}" is forbidden: violates PodSecurity "{level}:latest": '
                   f"{messages} (namespace {ns_name} enforces {level}; label it {ENFORCE_LABEL}={needed} to allow "
                   "this)", kind="pods", name=name,
                   causes=[Cause(path, message, "FieldValueForbidden") for message, path in found])


def admit_pod(registry: Registry) -> Any:
    def hook(pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        # An update is checked only when what is checked changes (status reports are not).
        if old is not None and _security_inputs(pod) == _security_inputs(old):
            return
        ns_name = pod["metadata"].get("namespace") or ""
        check_pod(namespace_level(registry.namespace(ns_name)), pod)

    return hook


def admit_namespace(ns: dict[str, Any], old: dict[str, Any] | None) -> None:
    """A level label must name a level (Kubernetes' PodSecurity validates it on the Namespace)."""
    value = _dict(_dict(ns.get("metadata")).get("labels")).get(ENFORCE_LABEL)
    before = _dict(_dict((old or {}).get("metadata")).get("labels")).get(ENFORCE_LABEL)
    if value is None or value in LEVELS or (old is not None and value == before):
        return
    message = f'Invalid value: "{value}": must be one of {", ".join(LEVELS)}'
    raise errors.invalid("Namespace", _dict(ns.get("metadata")).get("name", ""),
                         [Cause(f"metadata.labels[{ENFORCE_LABEL}]", message, "FieldValueInvalid")], "")


def install(registry: Registry) -> None:
    registry.add_admission("Pod", admit_pod(registry))
    registry.add_admission("Namespace", admit_namespace)
