"""Hardening of containers: what a pod's securityContext asks for, and the defaults a pod
gets without asking.

Every runc container runs with no_new_privs (unless it may escalate, below), a small
capability set, masked /proc paths (runc.py) and the default seccomp profile below, which
refuses the system calls that reach beyond a container: mounting, module and kexec loading,
keyrings, ptrace, bpf, namespace creation, clock and swap changes, reboot.
``securityContext.readOnlyRootFilesystem`` makes the rootfs read-only;
``runAsUser``/``runAsGroup`` set the process's ids; ``spec.hostUsers: false`` (Kubernetes'
field) or the annotation ``sigma.io/user-namespace: "true"`` runs the container in a user
namespace where its root is an unprivileged host uid.

The process runtime (process.py) runs a pod as ``nobody`` (65534:65534, no supplementary
groups) unless ``runAsUser`` names another user, and with no_new_privs unless the pod sets
``allowPrivilegeEscalation: true`` or ``privileged: true``. Whether a pod may ask for root or
for privileges is the namespace's pod-security level's call (sigma.api.podsecurity). Both
runtimes refuse to start a container with ``runAsNonRoot: true`` that would run as root, as
kubelet does (CreateContainerConfigError).
"""

from __future__ import annotations

from typing import Any

from sigma.agent.runtime.shimmed import StartFailure

USERNS_ANNOTATION = "sigma.io/user-namespace"
USERNS_HOST_BASE = 100_000  # container uid 0 is host uid 100000
USERNS_SIZE = 65_536
NOBODY = 65_534

# Refused with EPERM; everything else is allowed (a deny list, like Docker's profile in spirit).
DENIED_SYSCALLS = [
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
    "finit_module", "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms", "init_module",
    "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mount",
    "mount_setattr", "move_mount", "name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree",
    "perf_event_open", "personality", "pivot_root", "process_vm_readv", "process_vm_writev", "ptrace",
    "query_module", "quotactl", "reboot", "request_key", "setns", "settimeofday", "stime", "swapoff",
    "swapon", "syslog", "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86",
    "vm86old",
]


def seccomp_profile() -> dict[str, Any]:
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": DENIED_SYSCALLS, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }


def security_fields(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    """ContainerSpec fields from the pod's and the container's securityContext (the
    container's wins, as in Kubernetes)."""
    spec = pod.get("spec") or {}
    sc = {**(spec.get("securityContext") or {}), **(container.get("securityContext") or {})}
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    non_root = sc.get("runAsNonRoot")
    return {
        "run_as_user": _id(sc.get("runAsUser")),
        "run_as_group": _id(sc.get("runAsGroup")),
        "run_as_non_root": non_root if isinstance(non_root, bool) else None,
        "read_only_root": bool(sc.get("readOnlyRootFilesystem")),
        "user_namespace": spec.get("hostUsers") is False or annotations.get(USERNS_ANNOTATION) == "true",
        # Kubernetes' allowPrivilegeEscalation defaults to true; Sigma's to false, as every runc
        # container already runs with no_new_privs. Privileged containers may escalate.
        "no_new_privs": sc.get("allowPrivilegeEscalation") is not True and not sc.get("privileged"),
    }


def _id(value: Any) -> int | None:
    # bool is an int to Python; `runAsUser: true` is no user id.
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def check_non_root(spec: Any, uid: int) -> None:
    """Refuse to start a container that asks for ``runAsNonRoot`` but would run as ``uid`` 0,
    in kubelet's words."""
    if getattr(spec, "run_as_non_root", None) and uid == 0:
        raise StartFailure("CreateContainerConfigError",
                           f'container has runAsNonRoot and image will run as root (pod: "{spec.pod_name}_'
                           f'{spec.pod_namespace}({spec.pod_uid})", container: {spec.name})')


def harden(config: dict[str, Any], spec: Any) -> dict[str, Any]:
    """Apply the seccomp profile and what ``spec`` (a ContainerSpec) asks to an OCI config."""
    linux = config.setdefault("linux", {})
    linux["seccomp"] = seccomp_profile()
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
