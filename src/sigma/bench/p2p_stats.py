"""What `sigma bench p2p` reports besides time: CPU use (whole machine from /proc/stat, per
process from /proc/PID/stat) and the faults the downloads met."""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK")
# /proc/stat's first line: user nice system idle iowait irq softirq steal ...
_USER, _NICE, _SYSTEM, _IDLE, _IOWAIT, _IRQ, _SOFTIRQ = range(7)


def cpu_sample(pids: dict[str, int]) -> dict[str, Any]:
    with open("/proc/stat") as f:
        machine = [int(x) for x in f.readline().split()[1:]]
    procs = {}
    for name, pid in pids.items():
        with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{pid}/stat") as f:
            # Fields after the command's closing parenthesis; utime and stime are 14 and 15.
            fields = f.read().rsplit(")", 1)[1].split()
            procs[name] = (int(fields[11]) / _TICK, int(fields[12]) / _TICK)  # (user, system)
    return {"t": time.monotonic(), "machine": machine, "procs": procs}


def cpu_summary(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """CPU seconds used between two samples: the machine (busy fraction of all its CPUs, and
    its user / system / softirq time) and each sampled process alive at both ends."""
    elapsed = max(after["t"] - before["t"], 1e-9)
    delta = [(a - b) / _TICK for a, b in zip(after["machine"], before["machine"], strict=False)]
    idle = delta[_IDLE] + delta[_IOWAIT]
    total = sum(delta[:8])
    split = {
        n: (after["procs"][n][0] - before["procs"][n][0], after["procs"][n][1] - before["procs"][n][1])
        for n in after["procs"]
        if n in before["procs"]
    }
    procs = {n: u + s for n, (u, s) in split.items()}
    nodes = [s for n, s in procs.items() if n.startswith("node")]
    return {
        "busy": round((total - idle) / total, 3) if total else 0.0,
        "seconds": round(elapsed, 2),
        "cpus": os.cpu_count(),
        "user_s": round(delta[_USER] + delta[_NICE], 1),
        "system_s": round(delta[_SYSTEM], 1),
        "softirq_s": round(delta[_SOFTIRQ] + delta[_IRQ], 1),
        "nodes_s": round(sum(nodes), 1),
        "node_max_s": round(max(nodes), 1) if nodes else 0.0,
        "nodes_user_s": round(sum(u for n, (u, _) in split.items() if n.startswith("node")), 1),
        "nodes_system_s": round(sum(k for n, (_, k) in split.items() if n.startswith("node")), 1),
        **{f"{n}_s": round(s, 1) for n, s in procs.items() if not n.startswith("node")},
    }


def fault_counts(reports: list[dict[str, Any]], faults: bool, killed: int) -> dict[str, Any]:
    """What the surviving downloads met: pieces refused as corrupt, transfers a peer cut off,
    connections refused (a dead peer still listed at the tracker)."""
    failures = [f for r in reports for f in r["failures"]]
    return {
        "injected": faults,
        "killed_nodes": killed,
        "corrupt_pieces_refused": sum("corrupt" in f["reason"] for f in failures),
        "transfers_failed": sum("transfer failed" in f["reason"] and "Refused" not in f["reason"] for f in failures),
        "connections_refused": sum("Refused" in f["reason"] for f in failures),
        "from_registry_pieces": sum(r["from_registry"] for r in reports),
    }
