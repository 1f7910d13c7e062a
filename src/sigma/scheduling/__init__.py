"""The pure scheduling core: no I/O, no clock, no network; inputs in, decisions out.

Shared unchanged by sigma-scheduler (prod pods), fuxi-scheduler (batch instances), Level-0
and the trace simulator.

Pipeline of one cycle (`Scheduler.schedule`), as in the Kubernetes scheduler framework:

1. Pre-filter: `PodProfile` of the pod's shape (request vector, static node mask for
   unschedulable/nodeSelector/node affinity/taints, spread domains), cached per shape.
2. Filter (`feasible_nodes`): static mask, then resources fit, then topology spread and
   pod anti-affinity, each vectorised over all nodes of the `ClusterSnapshot`.
3. Score (`Scheduler.score_nodes`): weighted least/most-allocated, topology balance and
   taint preference, plus a seeded tie-break.
4. Select the best feasible node and reserve it (`ClusterSnapshot.assume`), in place.
5. If nothing fits: `Diagnosis` per node in kube-scheduler's words
   ("0/40 nodes are available: 31 Insufficient cpu, ...") and, when only resources
   failed somewhere, a `Preemption` (node + minimal victims from lower priority bands).

Batch: `InstancePlacer.place` puts N identical instances of a task in one vectorised call.
Priority bands live in `sigma.scheduling.priority`.
"""

from sigma.scheduling.batch import InstancePlacement, InstancePlacer, instances_per_node
from sigma.scheduling.model import (
    BATCH_CPU,
    BATCH_MEMORY,
    CPU,
    DEFAULT_RESOURCES,
    MEMORY,
    PODS,
    AntiAffinityTerm,
    LabelSelector,
    NodeSelectorTerm,
    NodeSpec,
    Operator,
    PodSpec,
    Requirement,
    SpreadConstraint,
    Taint,
    TaintEffect,
    Toleration,
    WhenUnsatisfiable,
    labels,
    requests,
)
from sigma.scheduling.pipeline import Scheduler, ScheduleResult, diagnose, feasible_nodes
from sigma.scheduling.preemption import Preemption, pick_preemption, select_victims_on_node
from sigma.scheduling.priority import BANDS, PriorityBand, band_of, may_preempt
from sigma.scheduling.profile import PodProfile
from sigma.scheduling.scores import LeastAllocated, MostAllocated, TaintPreference, TopologyBalance
from sigma.scheduling.snapshot import ClusterSnapshot, UnknownNode, UnknownResource
from sigma.scheduling.status import Code, Diagnosis, Status, summarize_failures

__all__ = [
    "BANDS",
    "BATCH_CPU",
    "BATCH_MEMORY",
    "CPU",
    "DEFAULT_RESOURCES",
    "MEMORY",
    "PODS",
    "AntiAffinityTerm",
    "ClusterSnapshot",
    "Code",
    "Diagnosis",
    "InstancePlacement",
    "InstancePlacer",
    "LabelSelector",
    "LeastAllocated",
    "MostAllocated",
    "NodeSelectorTerm",
    "NodeSpec",
    "Operator",
    "PodProfile",
    "PodSpec",
    "Preemption",
    "PriorityBand",
    "Requirement",
    "ScheduleResult",
    "Scheduler",
    "SpreadConstraint",
    "Status",
    "Taint",
    "TaintEffect",
    "TaintPreference",
    "Toleration",
    "TopologyBalance",
    "UnknownNode",
    "UnknownResource",
    "WhenUnsatisfiable",
    "band_of",
    "diagnose",
    "feasible_nodes",
    "instances_per_node",
    "labels",
    "may_preempt",
    "pick_preemption",
    "requests",
    "select_victims_on_node",
    "summarize_failures",
]
