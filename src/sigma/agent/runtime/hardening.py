"""Hardening of containers: what a pod's securityContext asks for, and the defaults a pod
gets without asking.

Every container the agent sandboxes (runc containers, and process-runtime pods when the
agent is root and runc is installed: sandbox.py) runs with no_new_privs (unless it may
escalate, below), the default capability set of containerd and CRI-O, masked /proc paths
(runc.py) and the default seccomp profile (seccomp.py), an allow-list that refuses with
EPERM whatever it does not name: mounting, namespace creation, keyrings, module and kexec
loading, bpf, clock changes, reboot... ``securityContext.seccompProfile.type: Unconfined``
turns seccomp off (admission decides who may ask), ``capabilities.add``/``drop`` adjust the
default set, ``privileged: true`` grants every capability without seccomp.
``readOnlyRootFilesystem`` makes the rootfs read-only; ``runAsUser``/``runAsGroup`` set the
process's ids; ``spec.hostUsers: false`` (Kubernetes' field) or the annotation
``sigma.io/user-namespace: "true"`` runs the container in a user namespace where its root is
an unprivileged host uid. A process-runtime pod that runs as root always gets that user
namespace: its root is never the host's.

The process runtime (process.py) runs a pod as ``nobody`` (65534:65534, no supplementary
groups) unless ``runAsUser`` names another user, and with no_new_privs unless the pod sets
``allowPrivilegeEscalation: true`` or ``privileged: true``. Whether a pod may ask for root or
for privileges is the namespace's pod-security level's call (sigma.api.podsecurity): the
agent grants what the admitted spec says and nothing more. Both runtimes refuse to start a
container with ``runAsNonRoot: true`` that would run as root, as kubelet does
(CreateContainerConfigError).
"""

from __future__ import annotations

from typing import Any

from sigma.agent.runtime.seccomp import runtime_default
from sigma.agent.runtime.shimmed import StartFailure

USERNS_ANNOTATION = "sigma.io/user-namespace"
USERNS_HOST_BASE = 100_000  # container uid 0 is host uid 100000
USERNS_SIZE = 65_536
NOBODY = 65_534

RUNTIME_DEFAULT = "RuntimeDefault"
UNCONFINED = "Unconfined"

# containerd's and CRI-O's default set (what a Kubernetes container holds unless it adds or
# drops capabilities).
DEFAULT_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
# Every capability Linux defines, in bit order (CAP_CHOWN is bit 0).
ALL_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]


def security_fields(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    """ContainerSpec fields from the pod's and the container's securityContext (the
    container's wins, as in Kubernetes)."""
    spec = pod.get("spec") or {}
    container_sc = container.get("securityContext") or {}
    sc = {**(spec.get("securityContext") or {}), **container_sc}
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    non_root = sc.get("runAsNonRoot")
    privileged = sc.get("privileged") is True
    caps = container_sc.get("capabilities") or {}
    return {
        "run_as_user": _id(sc.get("runAsUser")),
        "run_as_group": _id(sc.get("runAsGroup")),
        "run_as_non_root": non_root if isinstance(non_root, bool) else None,
        "read_only_root": bool(sc.get("readOnlyRootFilesystem")),
        "user_namespace": spec.get("hostUsers") is False or annotations.get(USERNS_ANNOTATION) == "true",
        # Kubernetes' allowPrivilegeEscalation defaults to true; Sigma's to false, as every
        # container runs with no_new_privs. Privileged containers may escalate.
        "no_new_privs": sc.get("allowPrivilegeEscalation") is not True and not privileged,
        "privileged": privileged,
        "seccomp_profile": str((sc.get("seccompProfile") or {}).get("type") or RUNTIME_DEFAULT),
        "capabilities_add": _names(caps.get("add")),
        "capabilities_drop": _names(caps.get("drop")),
    }


def _id(value: Any) -> int | None:
    # bool is an int to Python; `runAsUser: true` is no user id.
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _names(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def capabilities(spec: Any) -> list[str]:
    """The container's capability set: every one when privileged, else the default set less
    ``drop`` plus ``add`` (``ALL`` in either means every capability). Kubernetes spells them
    without the CAP_ prefix ("NET_ADMIN"); both spellings are accepted."""
    if getattr(spec, "privileged", False):
        return list(ALL_CAPABILITIES)
    drop = {_cap(name) for name in getattr(spec, "capabilities_drop", ())}
    add = {_cap(name) for name in getattr(spec, "capabilities_add", ())}
    caps = [] if "CAP_ALL" in drop else [c for c in DEFAULT_CAPABILITIES if c not in drop]
    wanted = ALL_CAPABILITIES if "CAP_ALL" in add else sorted(add)
    return caps + [c for c in wanted if c not in caps]


def _cap(name: str) -> str:
    upper = name.strip().upper()
    cap = upper if upper.startswith("CAP_") else "CAP_" + upper
    if cap != "CAP_ALL" and cap not in ALL_CAPABILITIES:
        raise StartFailure("CreateContainerError", f'unknown capability "{name}"')
    return cap


def seccomp(spec: Any, caps: list[str]) -> dict[str, Any] | None:
    """The OCI seccomp section for ``spec``, None for no filter (Unconfined, privileged)."""
    profile = getattr(spec, "seccomp_profile", RUNTIME_DEFAULT)
    if getattr(spec, "privileged", False) or profile == UNCONFINED:
        return None
    if profile != RUNTIME_DEFAULT:
        raise StartFailure("CreateContainerError",
                           f'seccompProfile type "{profile}" is not supported: use RuntimeDefault or Unconfined')
    return runtime_default(caps)


def check_non_root(spec: Any, uid: int) -> None:
    """Refuse to start a container that asks for ``runAsNonRoot`` but would run as ``uid`` 0,
    in kubelet's words."""
    if getattr(spec, "run_as_non_root", None) and uid == 0:
        raise StartFailure("CreateContainerConfigError",
                           f'container has runAsNonRoot and image will run as root (pod: "{spec.pod_name}_'
                           f'{spec.pod_namespace}({spec.pod_uid})", container: {spec.name})')


def harden(config: dict[str, Any], spec: Any) -> dict[str, Any]:
    """Apply the capabilities, the seccomp profile and what ``spec`` (a ContainerSpec) asks
    to an OCI config."""
    linux = config.setdefault("linux", {})
    caps = capabilities(spec)
    config["process"]["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    profile = seccomp(spec, caps)
    if profile is None:
        linux.pop("seccomp", None)
    else:
        linux["seccomp"] = profile
    if getattr(spec, "privileged", False):
        # A privileged container sees /proc and /sys unmasked, as Kubernetes' does.
        linux.pop("maskedPaths", None)
        linux.pop("readonlyPaths", None)
    config["process"]["noNewPrivileges"] = bool(getattr(spec, "no_new_privs", True))
    config.setdefault("root", {})["readonly"] = bool(getattr(spec, "read_only_root", False))
    user = config["process"].setdefault("user", {"uid": 0, "gid": 0})
    if getattr(spec, "run_as_user", None) is not None:
        user["uid"] = spec.run_as_user
        user["gid"] = spec.run_as_group if spec.run_as_group is not None else spec.run_as_user
    elif getattr(spec, "run_as_group", None) is not None:
        user["gid"] = spec.run_as_group
    check_non_root(spec, int(user["uid"]))
    if getattr(spec, "user_namespace", False):
        linux.setdefault("namespaces", []).append({"type": "user"})
        mapping = [{"containerID": 0, "hostID": USERNS_HOST_BASE, "size": USERNS_SIZE}]
        linux["uidMappings"], linux["gidMappings"] = mapping, list(mapping)
    return config
