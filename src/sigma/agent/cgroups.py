"""The cgroup tree the agent owns, on cgroup v1 or v2:

    <root>/prod/<pod-uid>/<container>     requests -> cpu.shares/weight, limits -> CFS quota,
                                          memory limit; cpuset for exclusive (LSR/LSE) cores
    <root>-batch/<pod-uid>/<container>    the batch parent runs SCHED_IDLE (cpu.idle=1) where
                                          the kernel has it, else cpu.shares=2 (weight 1);
                                          its CFS quota is the suppress knob

Why idle/shares on the parent and not just a quota: measured on our machines, a CFS quota
alone left prod's p99 5x worse; SCHED_IDLE or shares=2 restored it. The quota caps batch on top.

Why the batch parent is a sibling of <root> and not inside it: cpu.idle makes a group idle
only towards its siblings. Inside <root>, every cycle batch burns is charged to <root> at
the level above, where <root> competes with the host's own tasks (the agent, the master,
kernel threads) as one ordinary entity. With batch filling the machine <root> is then always
far "ahead" in virtual time, so a prod wake-up on a CPU where such a task runs waits out that
task's slice instead of preempting it, while the other CPU runs nothing but batch. Measured
with a Sigma master and agent beside the service (2 cores): prod p99 co-located / alone 1.02-1.21
nested, 0.91-0.96 as siblings. Put <root> at the top of the hierarchy for the full effect:
batch is then idle towards everything on the host.

Each agent has its own <root>: two agents on one machine (two `sigma up`, or `sigma up`
beside `sigma agent`) must never share one, or the first to stop and remove its tree kills
the other's pods. ``agent_cgroup_root`` gives each state directory its own name unless one
is asked for (--cgroup-root), and keeps it in STATE/cgroup-root so a restart finds its pods.

On v1 every path exists once per controller hierarchy; a cgroup2 mount next to v1 (e.g.
/sys/fs/cgroup/unified) gets the same path too, because only there the kernel keeps
per-group pressure (PSI) files.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import os
import re
import shutil
import signal
import time

from sigma.agent.kernelfiles import read_stripped, read_text
from sigma.agent.podspec import (
    BATCH,
    CFS_PERIOD_US,
    PROD,
    Resources,
    cpu_quota_us,
    cpu_shares,
    shares_to_weight,
)

V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids", "freezer")
V2_CONTROLLERS = ("cpu", "cpuset", "memory", "pids")
BATCH_SHARES = 2


CGROUP_ROOT_FILE = "cgroup-root"  # in the agent's state directory
LEGACY_ROOT = "sigma"  # every agent's root before each had its own


def default_cgroup_root(node_name: str, state_dir: str) -> str:
    """``sigma-<node>-<8 hex>``: the node name for people reading /sys/fs/cgroup, a digest
    of the state directory's real path so two agents of one node name (two `sigma up` on
    one host) still differ."""
    node = re.sub(r"[^a-z0-9.-]", "-", node_name.lower())[:48].strip(".-") or "node"
    digest = hashlib.sha256(os.path.realpath(state_dir).encode()).hexdigest()[:8]
    return f"sigma-{node}-{digest}"


def agent_cgroup_root(requested: str | None, node_name: str, state_dir: str, record: bool = True) -> str:
    """The cgroup root of the agent on ``state_dir``: ``requested`` (--cgroup-root) if
    given, else the one this state directory recorded, else a new ``default_cgroup_root``
    (or, for a state directory that already runs containers from before roots were
    recorded, the old shared "sigma", where those containers are). Recorded for the next
    start unless ``record`` is False (asking beforehand what the agent will choose)."""
    record_path = os.path.join(state_dir, CGROUP_ROOT_FILE)
    root = (requested or "").strip("/")
    if not root:
        try:
            with open(record_path, encoding="utf-8") as fh:
                root = fh.read().strip().strip("/")
        except FileNotFoundError:
            root = ""
    if not root:
        has_containers = bool(glob.glob(os.path.join(glob.escape(state_dir), "*", "*", "state.json")))
        root = LEGACY_ROOT if has_containers else default_cgroup_root(node_name, state_dir)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", root) or ".." in root.split("/"):
        raise ValueError(f"--cgroup-root {root!r}: a cgroup path of letters, digits, '_', '.' and '-' is needed")
    if not record:
        return root
    os.makedirs(state_dir, exist_ok=True)
    try:
        with open(record_path, encoding="utf-8") as fh:
            unchanged = fh.read().strip() == root
    except FileNotFoundError:
        unchanged = False
    if not unchanged:
        tmp = f"{record_path}.{os.getpid()}.tmp"
        # 0600 as every file of the agent's own (statemodes.py); the agent's umask is 022.
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as fh:
            fh.write(root + "\n")
        os.replace(tmp, record_path)
    return root


def _cgroup_mounts() -> set[str]:
    try:
        with open("/proc/self/mounts") as f:
            return {line.split()[1] for line in f if line.split()[2] in ("cgroup", "cgroup2")}
    except OSError:
        return set()


class CgroupTree:
    def __init__(self, root: str = "sigma", mount: str = "/sys/fs/cgroup") -> None:
        self.root, self.mount = root.strip("/"), mount
        self.version = 2 if os.path.exists(os.path.join(mount, "cgroup.controllers")) else 1
        self.hierarchies: dict[str, str] = {}  # controller -> hierarchy mount point
        if self.version == 2:
            self.hierarchies = {c: mount for c in V2_CONTROLLERS}
            self.unified: str | None = mount
        else:
            for c in V1_CONTROLLERS:
                path = os.path.join(mount, c)
                if os.path.isdir(path):
                    self.hierarchies[c] = os.path.realpath(path)  # "cpu" may link to "cpu,cpuacct"
            unified = os.path.join(mount, "unified")
            self.unified = unified if os.path.exists(os.path.join(unified, "cgroup.controllers")) else None
        mounts = _cgroup_mounts()
        # A fake tree (unit tests) is a plain directory: rmdir needs rmtree there.
        self.real = any(h in mounts for h in self._all_mounts())

    @property
    def available(self) -> bool:
        return bool(self.hierarchies) and os.access(next(iter(self.hierarchies.values())), os.W_OK)

    def _all_mounts(self) -> list[str]:
        seen = list(dict.fromkeys(self.hierarchies.values()))
        if self.unified and self.unified not in seen:
            seen.append(self.unified)
        return seen

    def _foreign_v1_mounts(self) -> list[str]:
        """v1 hierarchies Sigma does not manage (blkio, devices, systemd...). runc creates
        a container's cgroup in every hierarchy, so removal sweeps these too."""
        if self.version != 1 or not self.real:
            return []
        ours = set(self._all_mounts())
        return sorted(m for m in _cgroup_mounts() if m.startswith(self.mount + "/") and m not in ours)

    # -- paths ---------------------------------------------------------------------------
    @property
    def batch_root(self) -> str:
        return f"{self.root}-{BATCH}"

    @property
    def own_roots(self) -> tuple[str, str]:
        """Every top of the tree this agent owns: removing both removes everything."""
        return self.root, self.batch_root

    def tier_path(self, tier: str) -> str:
        """The parent of every pod of a tier (prod or batch)."""
        return self.batch_root if tier == BATCH else f"{self.root}/{tier}"

    def pod_path(self, tier: str, pod_uid: str) -> str:
        return f"{self.tier_path(tier)}/{pod_uid}"

    def path(self, controller: str, rel: str, filename: str = "") -> str:
        return os.path.join(self.hierarchies[controller], rel, filename)

    def procs_files(self, rel: str) -> list[str]:
        """Every cgroup.procs a process must be written to in order to live at `rel`."""
        return [os.path.join(m, rel, "cgroup.procs") for m in self._all_mounts()]

    def oom_counter(self, rel: str) -> str:
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        return self.path("memory", rel, name) if "memory" in self.hierarchies else ""

    def exists(self, rel: str) -> bool:
        return any(os.path.isdir(os.path.join(m, rel)) for m in self._all_mounts())

    def pressure_dir(self, rel: str) -> str | None:
        return os.path.join(self.unified, rel) if self.unified else None

    # -- building ------------------------------------------------------------------------
    def setup(self) -> None:
        """Create <root>, <root>/prod and <root>-batch and mark the batch parent idle."""
        for rel in (self.root, self.tier_path(PROD), self.batch_root):
            self._mkdir(rel)
        batch = self.batch_root
        if self.has_cpu_idle(batch):
            self._write("cpu", batch, "cpu.idle", "1")
        else:
            self.set_cpu_shares(batch, BATCH_SHARES)

    def has_cpu_idle(self, rel: str) -> bool:
        return "cpu" in self.hierarchies and os.path.exists(self.path("cpu", rel, "cpu.idle"))

    def ensure_pod(self, tier: str, pod_uid: str, res: Resources, cpuset: str | None = None) -> str:
        rel = self.pod_path(tier, pod_uid)
        self._mkdir(rel)
        self.apply(rel, res, cpuset)
        return rel

    def ensure_container(self, pod_rel: str, name: str, res: Resources, cpuset: str | None = None) -> str:
        rel = f"{pod_rel}/{name}"
        self._mkdir(rel)
        self.apply(rel, res, cpuset)
        return rel

    def apply(self, rel: str, res: Resources, cpuset: str | None = None) -> None:
        self.set_cpu_shares(rel, cpu_shares(res.cpu_request_millis))
        self._set_quota(rel, cpu_quota_us(res.cpu_limit_millis) if res.cpu_limit_millis else None)
        if res.memory_limit_bytes is not None:
            self._write(
                "memory",
                rel,
                "memory.limit_in_bytes" if self.version == 1 else "memory.max",
                str(res.memory_limit_bytes),
            )
        if cpuset:
            self._write("cpuset", rel, "cpuset.cpus", cpuset)

    def set_cpu_shares(self, rel: str, shares: int) -> None:
        if self.version == 1:
            self._write("cpu", rel, "cpu.shares", str(shares))
        else:
            self._write("cpu", rel, "cpu.weight", str(shares_to_weight(shares)))

    # -- the suppress knob ---------------------------------------------------------------
    def set_batch_cpu_quota(self, millis: int | None) -> None:
        """Cap all batch pods together at `millis` milli-cores (None lifts the cap)."""
        self._set_quota(self.batch_root, cpu_quota_us(millis) if millis is not None else None)

    def set_cpu_quota(self, rel: str, millis: int | None) -> None:
        self._set_quota(rel, cpu_quota_us(millis) if millis is not None else None)

    def batch_cpu_quota(self) -> int | None:
        return self.cpu_quota_millis(self.batch_root)

    def cpu_quota_millis(self, rel: str) -> int | None:
        quota, period = self._cfs_bandwidth(rel)
        return None if quota is None else quota * 1000 // period

    def cfs_quota_us(self, rel: str) -> int | None:
        """The CFS quota of `rel` in microseconds per period; None: no quota."""
        return self._cfs_bandwidth(rel)[0]

    def _cfs_bandwidth(self, rel: str) -> tuple[int | None, int]:
        """(quota in microseconds or None for none, period in microseconds) of `rel`."""
        if self.version == 1:
            quota = int(self.read("cpu", rel, "cpu.cfs_quota_us") or -1)
            period = int(self.read("cpu", rel, "cpu.cfs_period_us") or CFS_PERIOD_US)
        else:
            q, _, p = (self.read("cpu", rel, "cpu.max") or "max").partition(" ")
            quota, period = (-1 if q == "max" else int(q)), int(p or CFS_PERIOD_US)
        return (None if quota < 0 else quota), period

    # -- CPU burst (prod) ----------------------------------------------------------------
    def _burst_file(self) -> str:
        return "cpu.cfs_burst_us" if self.version == 1 else "cpu.max.burst"

    def cpu_burst_us(self, rel: str) -> int | None:
        """The CFS burst of `rel`; None where the kernel has none (before Linux 5.14)."""
        value = self.read("cpu", rel, self._burst_file())
        return int(value) if value is not None and value.isdigit() else None

    def set_cpu_burst_us(self, rel: str, burst_us: int) -> None:
        self._write("cpu", rel, self._burst_file(), str(burst_us))

    def _set_quota(self, rel: str, quota_us: int | None) -> None:
        burst = self.cpu_burst_us(rel) if quota_us is not None else None
        if burst is not None and quota_us is not None and burst > quota_us:
            # The kernel refuses a quota below the group's burst: drop the burst first (the
            # QoS loop sets the one the new quota allows on its next tick).
            self.set_cpu_burst_us(rel, 0)
        if self.version == 1:
            self._write("cpu", rel, "cpu.cfs_period_us", str(CFS_PERIOD_US))
            try:
                self._write("cpu", rel, "cpu.cfs_quota_us", str(quota_us if quota_us is not None else -1))
            except OSError as err:
                # v1 refuses a quota above the parent's. Under a suppressed batch parent a
                # pod's limit is moot anyway: take the parent's; the QoS loop gives the rest
                # back when the parent rises (QosManager.set_batch_quota).
                parent = self.cpu_quota_millis(os.path.dirname(rel))
                if err.errno != errno.EINVAL or quota_us is None or parent is None or quota_us <= cpu_quota_us(parent):
                    raise
                self._write("cpu", rel, "cpu.cfs_quota_us", str(cpu_quota_us(parent)))
        else:
            self._write(
                "cpu", rel, "cpu.max", f"{quota_us if quota_us is not None else 'max'} {CFS_PERIOD_US}"
            )

    # -- the cpuset suppress knob ---------------------------------------------------------
    def cpus(self, rel: str) -> str:
        """The CPUs `rel` may run on ("" without a cpuset controller). On v2 a group that
        never had cpuset.cpus written runs on its parent's: cpuset.cpus.effective says which."""
        value = self.read("cpuset", rel, "cpuset.cpus") or ""
        if not value and self.version == 2:
            value = self.read("cpuset", rel, "cpuset.cpus.effective") or ""
        return value

    def set_cpus(self, rel: str, cpus: str) -> None:
        self._write("cpuset", rel, "cpuset.cpus", cpus)

    def set_frozen(self, rel: str, frozen: bool) -> None:
        """Freeze or thaw every task under `rel` (v1 freezer, v2 cgroup.freeze)."""
        if self.version == 2:
            self._write("cpu", rel, "cgroup.freeze", "1" if frozen else "0")
        else:
            self._write("freezer", rel, "freezer.state", "FROZEN" if frozen else "THAWED")

    # -- reading and removing ------------------------------------------------------------
    def read(self, controller: str, rel: str, filename: str) -> str | None:
        if controller not in self.hierarchies:
            return None
        return read_stripped(self.path(controller, rel, filename))

    def pids(self, rel: str) -> set[int]:
        """Every process in `rel` or below it, in any hierarchy."""
        found: set[int] = set()
        for m in self._all_mounts():
            for dirpath, _dirs, files in os.walk(os.path.join(m, rel)):
                if "cgroup.procs" in files:
                    with open(os.path.join(dirpath, "cgroup.procs")) as f:
                        found.update(int(x) for x in f.read().split())
        return found

    def remove_all(self, timeout: float = 5.0) -> None:
        """Remove the whole tree: <root> and the batch parent beside it."""
        for rel in self.own_roots:
            self.remove(rel, timeout)

    def remove(self, rel: str, timeout: float = 5.0) -> None:
        """Kill what still runs in `rel` and remove it with all its children, bottom-up."""
        deadline = time.time() + timeout
        while (pids := self.pids(rel)) and time.time() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        for m in self._all_mounts() + self._foreign_v1_mounts():
            top = os.path.join(m, rel)
            if not os.path.isdir(top):
                continue
            if not self.real:
                shutil.rmtree(top)
                continue
            for dirpath, _dirs, _files in os.walk(top, topdown=False):
                _rmdir_retrying(dirpath, deadline)

    def _mkdir(self, rel: str) -> None:
        for m in self._all_mounts():
            path = os.path.join(m, rel)
            if os.path.isdir(path):
                continue
            os.makedirs(path, exist_ok=True)
            if self.version == 2 and m == self.mount and self.hierarchies:
                self._enable_controllers(rel)
        if self.version == 1 and "cpuset" in self.hierarchies:
            self._inherit_cpuset(rel)

    def _enable_controllers(self, rel: str) -> None:
        # v2: a controller works in a group only if every ancestor enables it for children.
        parts = rel.split("/")
        for depth in range(len(parts)):
            parent = os.path.join(self.mount, *parts[:depth])
            available = (read_text(os.path.join(parent, "cgroup.controllers")) or "").split()
            wanted = [c for c in V2_CONTROLLERS if c in available or not self.real]
            if wanted:
                _write(os.path.join(parent, "cgroup.subtree_control"), " ".join(f"+{c}" for c in wanted))

    def _inherit_cpuset(self, rel: str) -> None:
        # v1 creates cpuset groups empty (no cpus, no mems): a task cannot join until filled.
        parts = rel.split("/")
        for depth in range(1, len(parts) + 1):
            sub = "/".join(parts[:depth])
            parent = "/".join(parts[: depth - 1])
            for name in ("cpuset.mems", "cpuset.cpus"):
                if not self.read("cpuset", sub, name):
                    value = self.read("cpuset", parent, name)
                    if value:
                        self._write("cpuset", sub, name, value)

    def _write(self, controller: str, rel: str, filename: str, value: str) -> None:
        if controller in self.hierarchies:
            _write(self.path(controller, rel, filename), value)


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)




def _rmdir_retrying(path: str, deadline: float) -> None:
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as err:
            # EBUSY: the kernel has not finished reaping the last task yet.
            if err.errno != errno.EBUSY or time.time() >= deadline:
                raise
            time.sleep(0.05)
