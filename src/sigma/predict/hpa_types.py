"""The HorizontalPodAutoscaler decision's inputs and outputs (sigma.predict.hpa), and
Kubernetes' defaults: plain values, no logic."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

CPU = "cpu"
CPU_INITIALIZATION_PERIOD_S = 300.0  # kube-controller-manager --horizontal-pod-autoscaler-cpu-initialization-period
INITIAL_READINESS_DELAY_S = 30.0  # --horizontal-pod-autoscaler-initial-readiness-delay
DEFAULT_TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance


@dataclass(frozen=True)
class Container:
    name: str
    requests: Mapping[str, int]  # resource -> milli-cores (cpu) or bytes (memory)


@dataclass(frozen=True)
class Pod:
    name: str
    containers: tuple[Container, ...] = ()
    phase: str = "Running"
    deleted: bool = False
    ready: bool | None = True  # the PodReady condition; None when the pod has none
    ready_since: float | None = None  # the PodReady condition's lastTransitionTime
    start_time: float | None = None


@dataclass(frozen=True)
class Sample:
    """A pod's usage of one resource (milli-cores or bytes) and when it was measured."""

    value: int
    timestamp: float
    window_s: float


@dataclass(frozen=True)
class MetricTarget:
    resource: str
    type: str  # Utilization | AverageValue
    utilization: int | None = None  # percent of the request
    average_value: int | None = None  # milli-cores or bytes per pod


@dataclass(frozen=True)
class Policy:
    type: str  # Pods | Percent
    value: int
    period_s: int


@dataclass(frozen=True)
class Rules:
    stabilization_s: float  # seconds (a PredictiveScaler on a compressed clock has fractions)
    select: str = "Max"  # Max | Min | Disabled
    policies: tuple[Policy, ...] = ()
    tolerance: float = DEFAULT_TOLERANCE


DEFAULT_SCALE_UP = Rules(0, "Max", (Policy("Percent", 100, 15), Policy("Pods", 4, 15)))
DEFAULT_SCALE_DOWN = Rules(300, "Max", (Policy("Percent", 100, 15),))


@dataclass(frozen=True)
class Spec:
    min_replicas: int
    max_replicas: int
    metrics: tuple[MetricTarget, ...]
    scale_up: Rules = DEFAULT_SCALE_UP
    scale_down: Rules = DEFAULT_SCALE_DOWN


@dataclass(frozen=True)
class History:
    """What Kubernetes' controller remembers between syncs of one autoscaler."""

    recommendations: tuple[tuple[float, int], ...] = ()  # (time, replicas) before the behavior
    scale_up_events: tuple[tuple[float, int], ...] = ()  # (time, replicas added)
    scale_down_events: tuple[tuple[float, int], ...] = ()  # (time, replicas removed)


@dataclass(frozen=True)
class Condition:
    type: str  # AbleToScale | ScalingActive | ScalingLimited
    status: str  # True | False
    reason: str
    message: str


@dataclass(frozen=True)
class MetricStatus:
    resource: str
    average_value: int  # milli-cores or bytes per pod
    average_utilization: int | None = None


@dataclass(frozen=True)
class Proposal:
    """One metric's replica count, or why there is none."""

    replicas: int = 0
    status: MetricStatus | None = None
    error: str = ""
    reason: str = ""  # FailedGetResourceMetric when error


@dataclass(frozen=True)
class Decision:
    desired: int
    rescale: bool
    reason: str  # why it rescales (SuccessfulRescale's message), or the error
    conditions: tuple[Condition, ...]
    current_metrics: tuple[MetricStatus, ...]
    history: History
    failed: bool = False  # no replica count could be computed (status keeps the old desired)
    events: tuple[tuple[str, str, str], ...] = field(default=())  # (type, reason, message)
