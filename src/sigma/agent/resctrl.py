"""Cache and memory-bandwidth isolation through the resctrl filesystem: the shell.

The plan (which ways, which bandwidth) is sigma.colocation.resctrl's; this module reads
what the hardware offers, creates the two groups and keeps the pods' tasks in them:

    <root>/info/L3/cbm_mask, min_cbm_bits      ways of L3 and the smallest allowed mask
    <root>/info/MB/bandwidth_gran, min_bandwidth   present only with MBA
    <root>/schemata                            the default group: gives the cache domain ids
    <root>/sigma-prod/{schemata,tasks}          created by mkdir on the real filesystem
    <root>/sigma-batch/{schemata,tasks}

The kernel moves one task per write() to `tasks`, so pids are written one at a time and
a pid that exited in between (ESRCH) is skipped. Pids already moved are remembered so a
tick only writes newcomers. Without resctrl (no RDT, as on our test machines) the agent
says so once and the metric reports it; nothing else changes.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable

from sigma.agent.kernelfiles import read_stripped
from sigma.colocation.resctrl import BATCH_GROUP, PROD_GROUP, RdtInfo, ResctrlPlan, resctrl_plan

log = logging.getLogger("sigma.agent.resctrl")

DEFAULT_ROOT = "/sys/fs/resctrl"
APPLIED, UNSUPPORTED, ERROR = "applied", "unsupported", "error"


def parse_domains(schemata: str, resource: str = "L3") -> tuple[int, ...]:
    """Cache domain ids from a schemata text, e.g. "L3:0=fffff;1=fffff" -> (0, 1)."""
    for line in schemata.splitlines():
        name, _, values = line.strip().partition(":")
        if name.strip() == resource:
            ids = [part.split("=", 1)[0] for part in values.split(";") if "=" in part]
            return tuple(int(i) for i in ids if i.strip().isdigit())
    return (0,)


def read_info(root: str) -> RdtInfo | None:
    """What the hardware offers, or None when there is no L3 allocation (CAT)."""
    mask = read_stripped(os.path.join(root, "info", "L3", "cbm_mask"))
    if not mask:
        return None
    min_bits = read_stripped(os.path.join(root, "info", "L3", "min_cbm_bits")) or "1"
    gran = read_stripped(os.path.join(root, "info", "MB", "bandwidth_gran"))
    min_bw = read_stripped(os.path.join(root, "info", "MB", "min_bandwidth"))
    return RdtInfo(mask, parse_domains(read_stripped(os.path.join(root, "schemata")) or ""), int(min_bits),
                   mba=gran is not None, bandwidth_gran=int(gran or 10), min_bandwidth=int(min_bw or 10))


class Resctrl:
    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = root
        self.state = ""  # "" until the first apply, then APPLIED | UNSUPPORTED | ERROR
        self.plan: ResctrlPlan | None = None
        self._moved: dict[str, set[int]] = {PROD_GROUP: set(), BATCH_GROUP: set()}
        self._planned_for: tuple[float, int] | None = None

    def apply(self, prod_pids: Iterable[int], batch_pids: Iterable[int], way_share: float,
              bandwidth_percent: int) -> str:
        """Make the groups match the plan and move the pids in; returns the state."""
        info = read_info(self.root) if os.path.exists(os.path.join(self.root, "schemata")) else None
        if info is None:
            if self.state != UNSUPPORTED:
                log.warning("cache isolation unsupported: no resctrl L3 allocation under %s "
                            "(batch shares the L3 cache and memory bandwidth with prod)", self.root)
            self.state = UNSUPPORTED
            return self.state
        try:
            if self._planned_for != (way_share, bandwidth_percent) or self.plan is None:
                self.plan = resctrl_plan(info, way_share, bandwidth_percent)
                for group, lines in self.plan.groups.items():
                    self._write_schemata(group, lines)
                self._planned_for = (way_share, bandwidth_percent)
                log.info("resctrl: %s", self.plan.reason)
            self._move(PROD_GROUP, prod_pids)
            self._move(BATCH_GROUP, batch_pids)
        except OSError as err:
            if self.state != ERROR:
                log.warning("resctrl under %s failed: %s", self.root, err)
            self.state = ERROR
            self._planned_for = None  # write the schemata again next time
            return self.state
        self.state = APPLIED
        return self.state

    def _write_schemata(self, group: str, lines: list[str]) -> None:
        directory = os.path.join(self.root, group)
        os.makedirs(directory, exist_ok=True)  # the real filesystem fills it with its files
        with open(os.path.join(directory, "schemata"), "w") as f:
            for line in lines:  # one resource per write: an invalid line names itself in the error
                f.write(line + "\n")
                f.flush()

    def _move(self, group: str, pids: Iterable[int]) -> None:
        wanted = set(pids)
        moved = self._moved[group]
        moved &= wanted  # forget pids that exited (they may be reused by another process)
        new = sorted(wanted - moved)
        if not new:
            return
        # Raw writes: a buffered file would retry a refused pid on the next flush.
        fd = os.open(os.path.join(self.root, group, "tasks"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            for pid in new:
                try:
                    os.write(fd, f"{pid}\n".encode())
                except OSError as err:
                    if err.errno != errno.ESRCH:  # the task exited in between
                        raise
                    continue
                moved.add(pid)
        finally:
            os.close(fd)
