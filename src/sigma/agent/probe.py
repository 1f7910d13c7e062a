"""What this machine can do, found once at start-up.

Each missing capability comes with a sentence for the log and a Node condition/annotation,
because the principle is to degrade loudly: without root or cgroups the process runtime
still runs pods, without limits, and the Node says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

CPU_IDLE_HELP = "batch runs with cpu.shares=2 instead of SCHED_IDLE (cpu.idle needs Linux 5.15+)"


@dataclass(frozen=True)
class Capabilities:
    root: bool
    cgroup_version: int | None  # 1, 2 or None when no cgroup filesystem is mounted
    controllers: tuple[str, ...]
    cpu_idle: bool
    runc: str | None  # runc's version, None when absent
    resctrl: bool
    psi: bool
    cgroup_psi: bool  # per-group pressure files (cgroup2, or the v1 machine's unified mount)
    unshare: bool
    missing: tuple[str, ...] = field(default=())

    def annotations(self) -> dict[str, str]:
        """For the Node object: sigma.io/capability-* annotations, one per fact."""
        return {
            "sigma.io/cgroup-version": str(self.cgroup_version or "none"),
            "sigma.io/cgroup-controllers": ",".join(self.controllers),
            "sigma.io/cpu-idle": str(self.cpu_idle).lower(),
            "sigma.io/runc": self.runc or "absent",
            "sigma.io/resctrl": str(self.resctrl).lower(),
            "sigma.io/psi": str(self.psi).lower(),
        }

    def conditions(self) -> list[dict[str, str]]:
        """One Node condition summarising what is degraded (status True means degraded)."""
        degraded = bool(self.missing)
        return [
            {
                "type": "SigmaDegraded",
                "status": "True" if degraded else "False",
                "reason": "MissingCapabilities" if degraded else "AllCapabilitiesPresent",
                "message": "; ".join(self.missing) or "every capability the agent uses is present",
            }
        ]


def describe_missing(c: Capabilities) -> tuple[str, ...]:
    """Pure: the plain-words list of what is missing and what that costs."""
    out = []
    if not c.root:
        out.append(
            "not running as root: no cgroups, namespaces or runc; pods run as plain processes "
            "without resource limits"
        )
    if c.cgroup_version is None:
        out.append("no cgroup filesystem: pods run without CPU or memory limits")
    else:
        for ctrl in ("cpu", "cpuset", "memory", "pids"):
            if ctrl not in c.controllers:
                out.append(f"cgroup controller {ctrl} is missing: its limits are not enforced")
        if not c.cpu_idle and "cpu" in c.controllers:
            out.append(CPU_IDLE_HELP)
    if c.runc is None:
        out.append("runc is not installed: pods with an image cannot run (apt package runc)")
    if not c.resctrl:
        out.append("no resctrl filesystem: no cache/memory-bandwidth isolation (Intel RDT/AMD QoS)")
    if not c.psi:
        out.append("no pressure stall information (/proc/pressure): pressure metrics are absent")
    elif not c.cgroup_psi:
        out.append("no per-cgroup pressure files: only node-level pressure is reported")
    if not c.unshare:
        out.append("cannot create namespaces: process-runtime pods share the host's pid/mount/uts/ipc")
    return tuple(out)


def probe(mount: str = "/sys/fs/cgroup", resctrl: str = "/sys/fs/resctrl") -> Capabilities:
    root = os.geteuid() == 0
    version, controllers = _cgroups(mount)
    idle = any(
        os.path.exists(os.path.join(p, "cpu.idle")) for p in (os.path.join(mount, "cpu"), mount)
    ) or _v2_child_has_idle(mount, version)
    caps = Capabilities(
        root=root,
        cgroup_version=version,
        controllers=controllers,
        cpu_idle=idle,
        runc=_runc_version(),
        resctrl=os.path.exists(os.path.join(resctrl, "schemata")),
        psi=os.path.exists("/proc/pressure/cpu"),
        cgroup_psi=os.path.exists(os.path.join(mount, "unified", "cgroup.pressure"))
        or (version == 2 and os.path.exists(os.path.join(mount, "cgroup.pressure"))),
        unshare=root and hasattr(os, "fork"),
    )
    return Capabilities(**{**caps.__dict__, "missing": describe_missing(caps)})


def _cgroups(mount: str) -> tuple[int | None, tuple[str, ...]]:
    v2 = os.path.join(mount, "cgroup.controllers")
    if os.path.exists(v2):
        with open(v2) as f:
            return 2, tuple(sorted(f.read().split()))
    if not os.path.isdir(mount):
        return None, ()
    found = [
        c
        for c in ("cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "blkio")
        if os.path.isdir(os.path.join(mount, c))
    ]
    return (1, tuple(found)) if found else (None, ())


def _v2_child_has_idle(mount: str, version: int | None) -> bool:
    # On v2 the root group has no cpu.idle; any child with the cpu controller shows it.
    if version != 2:
        return False
    return any(entry.is_dir() and os.path.exists(os.path.join(entry.path, "cpu.idle")) for entry in os.scandir(mount))


def _runc_version() -> str | None:
    path = shutil.which("runc")
    if path is None:
        return None
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = out.splitlines()[0] if out else ""
    return first.removeprefix("runc version ").strip() or "unknown"
