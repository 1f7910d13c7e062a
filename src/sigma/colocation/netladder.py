"""The network rung of the agent's ladder: batch pods' bandwidth, lowered while prod needs
the link and given back when it no longer does. Pure (no I/O, no clock).

NodeSLO `spec.network` (every field optional):

    network:
      linkMbps: 1000          # the node's link, per direction, that prod and batch share
      threshold: 0.9          # prod + batch stay under this share of the link
      batchEgressMbps: 500    # the most one batch pod may send (default: the link)
      batchIngressMbps: 500   # the most one batch pod may receive (default: the link)
      batchFloorMbps: 10      # a batch pod is never squeezed below this, so it keeps going

A batch pod's cap per direction is the NodeSLO's, or its `kubernetes.io/egress-bandwidth`
(`ingress-bandwidth`) annotation where that is lower. Each tick, per direction:

    room = link x threshold - prod throughput now

and the batch pods share the room by water-filling (a pod whose cap is below an equal share
leaves the rest to the others), each at least the floor and at most its cap. A link the prod
pods leave free gives every batch pod its cap back. Limits move only when the change is
worth a `tc qdisc change`: a step down or up of more than DEADBAND of the current rate, or
back to the cap exactly, so the measurement's noise does not rewrite the qdisc every second.

Prod throughput is what prod's pods sent (received) over the last interval: the pods it
squeezes are batch, so batch's own throughput does not enter the room (otherwise a batch
held at its limit would read as "the link has room" and be given it back, and the rate
would swing every tick); it is reported beside the decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sigma.quantity import QuantityError, parse_quantity

MBIT = 1_000_000
DEFAULT_LINK_MBPS = 1000
DEFAULT_NET_THRESHOLD = 0.9
DEFAULT_FLOOR_MBPS = 10
MAX_MBPS = 1_000_000  # 1 Tbit/s
DEADBAND = 0.1
EGRESS, INGRESS = "egress", "ingress"
DIRECTIONS = (EGRESS, INGRESS)
ANNOTATIONS = {INGRESS: "kubernetes.io/ingress-bandwidth", EGRESS: "kubernetes.io/egress-bandwidth"}
MIN_ANNOTATION, MAX_ANNOTATION = Decimal(1000), Decimal(10**15)  # what the pod network accepts


@dataclass(frozen=True)
class NetworkSLO:
    link_mbps: int = DEFAULT_LINK_MBPS
    threshold: float = DEFAULT_NET_THRESHOLD
    batch_egress_mbps: int | None = None  # None: the link
    batch_ingress_mbps: int | None = None
    batch_floor_mbps: int = DEFAULT_FLOOR_MBPS

    def cap_bits(self, direction: str) -> int:
        """The NodeSLO's cap of one batch pod in `direction`, bits per second."""
        value = self.batch_egress_mbps if direction == EGRESS else self.batch_ingress_mbps
        return min(value or self.link_mbps, self.link_mbps) * MBIT

    @property
    def floor_bits(self) -> int:
        return self.batch_floor_mbps * MBIT


DEFAULT_NETWORK_SLO = NetworkSLO()


def _mbps(spec: Mapping[str, Any], key: str) -> int | None:
    value = spec.get(key)
    ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_MBPS
    return value if ok else None


def network_slo(spec: object) -> NetworkSLO:
    """Tolerant, like the rest of the NodeSLO: a field out of range takes its default."""
    spec = spec if isinstance(spec, Mapping) else {}
    d = NetworkSLO()
    threshold = spec.get("threshold", d.threshold)
    threshold_ok = isinstance(threshold, int | float) and not isinstance(threshold, bool) and 0 < threshold <= 1
    return NetworkSLO(_mbps(spec, "linkMbps") or d.link_mbps, float(threshold) if threshold_ok else d.threshold,
                      _mbps(spec, "batchEgressMbps"), _mbps(spec, "batchIngressMbps"),
                      _mbps(spec, "batchFloorMbps") or d.batch_floor_mbps)


def validate_network_spec(spec: object, path: str = "spec.network") -> list[tuple[str, str, str]]:
    """(field path, message, reason) for what the API refuses beyond the schema's bounds:
    a batch cap or floor above the link, a floor above a cap, a threshold of 0 (batch
    would be held at the floor forever, which the floor field says better)."""
    if not isinstance(spec, Mapping):
        return []
    out: list[tuple[str, str, str]] = []
    link = spec.get("linkMbps", DEFAULT_LINK_MBPS)
    link = link if isinstance(link, int) and not isinstance(link, bool) else DEFAULT_LINK_MBPS
    threshold = spec.get("threshold")
    if isinstance(threshold, int | float) and not isinstance(threshold, bool) and threshold <= 0:
        out.append((f"{path}.threshold", f"Invalid value: {threshold}: must be greater than 0", "FieldValueInvalid"))
    caps = []
    for key in ("batchEgressMbps", "batchIngressMbps", "batchFloorMbps"):
        value = spec.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > link:
            out.append((f"{path}.{key}", f"Invalid value: {value}: must be less than or equal to linkMbps ({link})",
                        "FieldValueInvalid"))
        elif key != "batchFloorMbps" and isinstance(value, int) and not isinstance(value, bool):
            caps.append((key, value))
    floor = spec.get("batchFloorMbps")
    if isinstance(floor, int) and not isinstance(floor, bool) and floor <= link:
        for key, cap in caps:
            if floor > cap:
                out.append((f"{path}.batchFloorMbps", f"Invalid value: {floor}: must be less than or equal to "
                            f"{key} ({cap})", "FieldValueInvalid"))
                break
    return out


# -- a batch pod's caps --------------------------------------------------------------------
@dataclass(frozen=True)
class PodCaps:
    egress_bits: int
    ingress_bits: int
    problems: tuple[str, ...] = ()  # one message per malformed annotation, for the pod's Event

    def of(self, direction: str) -> int:
        return self.egress_bits if direction == EGRESS else self.ingress_bits


def batch_caps(annotations: Mapping[str, Any] | None, slo: NetworkSLO) -> PodCaps:
    """A batch pod's cap per direction: the NodeSLO's, or the pod's annotation where lower.
    A malformed annotation is not the pod's end (as it is for a prod pod, whose only limit
    it is): the NodeSLO's value applies, and the problem is said on the pod."""
    annotations = annotations or {}
    caps, problems = {}, []
    for direction in DIRECTIONS:
        cap, key = slo.cap_bits(direction), ANNOTATIONS[direction]
        if key in annotations:
            try:
                value = parse_quantity(str(annotations[key]))
            except (QuantityError, ValueError):
                value = Decimal(-1)
            if MIN_ANNOTATION <= value <= MAX_ANNOTATION:
                cap = min(cap, int(value))
            else:
                problems.append(f"annotation {key}: {annotations[key]!r} is not a bandwidth from 1k to 1P; "
                                f"the node's batch {direction} limit {cap // MBIT}Mbps (NodeSLO) applies")
        caps[direction] = cap
    return PodCaps(caps[EGRESS], caps[INGRESS], tuple(problems))


# -- the decision ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchPod:
    key: str  # the pod's uid (or any name the shell knows it by)
    caps: PodCaps
    egress_bits: int | None  # its current limit; None: unknown (no qdisc read)
    ingress_bits: int | None

    def current(self, direction: str) -> int | None:
        return self.egress_bits if direction == EGRESS else self.ingress_bits


@dataclass(frozen=True)
class NetInputs:
    slo: NetworkSLO
    prod_egress_bps: int  # what prod pods sent over the last interval, bits per second
    prod_ingress_bps: int
    batch_egress_bps: int
    batch_ingress_bps: int
    pods: Sequence[BatchPod] = ()


@dataclass(frozen=True)
class NetDecision:
    limits: dict[str, dict[str, int]]  # pod key -> direction -> the limit it should have (bits/s)
    changes: dict[str, dict[str, int]]  # only the limits worth a tc change now
    budget_bits: dict[str, int]  # direction -> what batch may use together
    squeezed: dict[str, bool]  # direction -> batch held below its caps by prod
    reason: str


def waterfill(budget: int, caps: Mapping[str, int], floor: int) -> dict[str, int]:
    """Share `budget` among pods capped at `caps`: equal shares, a pod's unused share going to
    the rest; every pod at least `floor` (even past the budget) and at most its cap."""
    out: dict[str, int] = {}
    left = sorted(caps.items(), key=lambda kv: (kv[1], kv[0]))
    remaining = max(budget, 0)
    while left:
        share = remaining // len(left)
        key, cap = left[0]
        if cap <= share:  # the smallest cap fits: it takes it, the rest share what is left
            out[key] = cap
            remaining -= cap
            left.pop(0)
            continue
        for key, _cap in left:
            out[key] = share
        break
    return {key: min(caps[key], max(value, floor)) for key, value in out.items()}


def _worth(new: int, current: int | None, cap: int) -> bool:
    if current is None:
        return True
    if new == current:
        return False
    return new == cap or abs(new - current) > DEADBAND * current


def decide_batch_limits(inputs: NetInputs) -> NetDecision:
    slo = inputs.slo
    allowed = int(slo.link_mbps * MBIT * slo.threshold)
    limits: dict[str, dict[str, int]] = {p.key: {} for p in inputs.pods}
    changes: dict[str, dict[str, int]] = {}
    budget, squeezed, reasons = {}, {}, []
    for direction in DIRECTIONS:
        prod = inputs.prod_egress_bps if direction == EGRESS else inputs.prod_ingress_bps
        batch = inputs.batch_egress_bps if direction == EGRESS else inputs.batch_ingress_bps
        room = allowed - prod
        budget[direction] = max(room, 0)
        caps = {p.key: p.caps.of(direction) for p in inputs.pods}
        shares = waterfill(room, caps, slo.floor_bits)
        squeezed[direction] = any(shares[k] < caps[k] for k in shares)
        for pod in inputs.pods:
            limits[pod.key][direction] = shares[pod.key]
            if _worth(shares[pod.key], pod.current(direction), caps[pod.key]):
                changes.setdefault(pod.key, {})[direction] = shares[pod.key]
        state = "batch squeezed" if squeezed[direction] else "batch at its caps"
        reasons.append(f"{direction}: prod {prod / MBIT:.1f}Mbps, batch {batch / MBIT:.1f}Mbps of "
                       f"{allowed / MBIT:.0f}Mbps allowed ({slo.threshold:g} x {slo.link_mbps}Mbps): {state}")
    return NetDecision(limits, changes, budget, squeezed, "; ".join(reasons))
