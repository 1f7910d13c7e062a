"""Typed scheduling outcomes, as in the Kubernetes scheduler framework.

"Doesn't fit" is never confused with "broke": Unschedulable means preemption might help,
UnschedulableAndUnresolvable means it cannot (a selector mismatch stays a mismatch), and
Error means the input itself was wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from sigma.scheduling.arrays import IntArray


class Code(StrEnum):
    SUCCESS = "Success"
    UNSCHEDULABLE = "Unschedulable"
    UNRESOLVABLE = "UnschedulableAndUnresolvable"
    ERROR = "Error"


# Reason texts, worded exactly as kube-scheduler words them so users can search for them.
REASON_UNSCHEDULABLE_NODE = "node(s) were unschedulable"
REASON_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_TOO_MANY_PODS = "Too many pods"
REASON_SPREAD = "node(s) didn't match pod topology spread constraints"
REASON_SPREAD_MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
REASON_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
REASON_HOST_PORTS = "node(s) didn't have free ports for the requested pod ports"


def insufficient(resource: str) -> str:
    return f"Insufficient {resource}"


def untolerated_taint(key: str, value: str) -> str:
    return f"node(s) had untolerated taint {{{key}: {value}}}"


@dataclass(frozen=True)
class Status:
    code: Code
    reasons: tuple[str, ...] = ()

    @property
    def is_success(self) -> bool:
        return self.code is Code.SUCCESS


SUCCESS = Status(Code.SUCCESS)


@dataclass(frozen=True)
class Diagnosis:
    """Why each node was rejected: groups of node indices sharing the status of the first
    filter that rejected them (filters run in pipeline order, as in kube-scheduler)."""

    node_count: int
    groups: tuple[tuple[IntArray, Status], ...] = ()

    def reason_counts(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for nodes, status in self.groups:
            for reason in status.reasons:
                counts[reason] += len(nodes)
        return counts

    def message(self) -> str:
        return summarize_reasons(self.node_count, self.reason_counts())

    def status_of(self, node: int) -> Status:
        for nodes, status in self.groups:
            if node in nodes:
                return status
        return SUCCESS


def summarize_failures(node_count: int, statuses: Iterable[Status]) -> str:
    """The message for a list of per-node statuses (one per rejected node)."""
    return summarize_reasons(node_count, Counter(r for status in statuses for r in status.reasons))


def summarize_reasons(node_count: int, counts: Counter[str]) -> str:
    """`0/40 nodes are available: 31 Insufficient cpu, 9 node(s) didn't match ....`

    Like kube-scheduler: one "<count> <reason>" entry per distinct reason (a node may add
    several, e.g. cpu and memory), the entries sorted as strings (count included).
    """
    message = f"0/{node_count} nodes are available"
    entries = sorted(f"{count} {reason}" for reason, count in counts.items())
    return f"{message}: {', '.join(entries)}." if entries else f"{message}."
