"""The network rung of the ladder: caps from the NodeSLO and annotations, the room prod
leaves shared among batch pods, the deadband, restoring; and the NodeSLO's network rules."""

from __future__ import annotations

from sigma.colocation.netladder import (
    EGRESS,
    INGRESS,
    MBIT,
    BatchPod,
    NetInputs,
    NetworkSLO,
    batch_caps,
    decide_batch_limits,
    network_slo,
    validate_network_spec,
    waterfill,
)
from sigma.colocation.slo import node_slo, validate_slo_spec

SLO = NetworkSLO(link_mbps=100, threshold=0.8, batch_egress_mbps=50, batch_ingress_mbps=40, batch_floor_mbps=5)


def pod(key: str, egress: int | None = None, ingress: int | None = None,
        annotations: dict[str, str] | None = None) -> BatchPod:
    return BatchPod(key, batch_caps(annotations, SLO), egress, ingress)


def inputs(prod_egress_mbps: float, *pods: BatchPod, prod_ingress_mbps: float = 0) -> NetInputs:
    return NetInputs(SLO, int(prod_egress_mbps * MBIT), int(prod_ingress_mbps * MBIT), 0, 0, pods)


def test_caps_come_from_the_nodeslo_and_a_lower_annotation_wins() -> None:
    assert batch_caps({}, SLO).egress_bits == 50 * MBIT and batch_caps({}, SLO).ingress_bits == 40 * MBIT
    lower = batch_caps({"kubernetes.io/egress-bandwidth": "10M", "kubernetes.io/ingress-bandwidth": "1G"}, SLO)
    assert (lower.egress_bits, lower.ingress_bits, lower.problems) == (10 * MBIT, 40 * MBIT, ())
    # Without a NodeSLO cap the link is the cap.
    assert batch_caps({}, NetworkSLO(link_mbps=300)).of(EGRESS) == 300 * MBIT


def test_a_malformed_annotation_keeps_the_nodeslo_value_and_names_both() -> None:
    caps = batch_caps({"kubernetes.io/egress-bandwidth": "fast", "kubernetes.io/ingress-bandwidth": "10"}, SLO)
    assert (caps.egress_bits, caps.ingress_bits) == (50 * MBIT, 40 * MBIT)
    assert len(caps.problems) == 2
    assert "kubernetes.io/egress-bandwidth: 'fast'" in caps.problems[0] and "50Mbps (NodeSLO)" in caps.problems[0]
    assert "kubernetes.io/ingress-bandwidth: '10'" in caps.problems[1] and "40Mbps" in caps.problems[1]


def test_an_idle_link_gives_every_batch_pod_its_cap() -> None:
    decision = decide_batch_limits(inputs(0, pod("a"), pod("b", annotations={"kubernetes.io/egress-bandwidth": "8M"})))
    assert decision.limits == {"a": {EGRESS: 50 * MBIT, INGRESS: 40 * MBIT},
                               "b": {EGRESS: 8 * MBIT, INGRESS: 40 * MBIT}}
    assert decision.changes == decision.limits  # nothing known yet: everything applied
    assert decision.squeezed == {EGRESS: False, INGRESS: False}


def test_prod_traffic_lowers_batch_to_the_room_left_and_the_floor_holds() -> None:
    # 80 allowed - 50 prod = 30 shared by two pods: 15 each.
    decision = decide_batch_limits(inputs(50, pod("a", 50 * MBIT, 40 * MBIT), pod("b", 50 * MBIT, 40 * MBIT)))
    assert decision.limits["a"][EGRESS] == decision.limits["b"][EGRESS] == 15 * MBIT
    assert decision.squeezed[EGRESS] and not decision.squeezed[INGRESS]
    assert decision.changes == {"a": {EGRESS: 15 * MBIT}, "b": {EGRESS: 15 * MBIT}}
    assert "prod 50.0Mbps" in decision.reason and "batch squeezed" in decision.reason
    # Prod over the whole allowance: each batch pod at the floor, not at zero.
    swamped = decide_batch_limits(inputs(95, pod("a", 15 * MBIT, 40 * MBIT)))
    assert swamped.limits["a"][EGRESS] == 5 * MBIT and swamped.budget_bits[EGRESS] == 0


def test_room_a_low_cap_leaves_goes_to_the_others() -> None:
    assert waterfill(30, {"a": 5, "b": 50, "c": 50}, 0) == {"a": 5, "b": 12, "c": 12}
    assert waterfill(200, {"a": 5, "b": 50}, 0) == {"a": 5, "b": 50}
    assert waterfill(-10, {"a": 5, "b": 50}, 2) == {"a": 2, "b": 2}
    assert waterfill(10, {}, 2) == {}


def test_small_moves_stay_inside_the_deadband_and_the_cap_comes_back_exactly() -> None:
    # Room 80 - 51 = 29 for one pod at 30: a 3% move, not worth a tc change.
    steady = decide_batch_limits(inputs(51, pod("a", 30 * MBIT, 40 * MBIT)))
    assert steady.limits["a"][EGRESS] == 29 * MBIT and steady.changes == {}
    # Prod gone: back to the cap even when the step is small.
    restored = decide_batch_limits(inputs(0, pod("a", 48 * MBIT, 40 * MBIT)))
    assert restored.changes == {"a": {EGRESS: 50 * MBIT}}


def test_ingress_is_decided_on_prod_ingress() -> None:
    decision = decide_batch_limits(inputs(0, pod("a", 50 * MBIT, 40 * MBIT), prod_ingress_mbps=70))
    assert decision.limits["a"] == {EGRESS: 50 * MBIT, INGRESS: 10 * MBIT}
    assert decision.changes == {"a": {INGRESS: 10 * MBIT}}


def test_the_nodeslo_reads_network_with_defaults_and_tolerates_bad_values() -> None:
    assert node_slo({}).network == NetworkSLO()
    read = node_slo({"network": {"linkMbps": 100, "threshold": 0.5, "batchEgressMbps": 20, "batchFloorMbps": 2}})
    assert read.network == NetworkSLO(100, 0.5, 20, None, 2)
    assert network_slo({"linkMbps": -1, "threshold": 7, "batchEgressMbps": True}) == NetworkSLO()
    assert NetworkSLO(link_mbps=100, batch_egress_mbps=500).cap_bits(EGRESS) == 100 * MBIT


def test_the_api_refuses_caps_above_the_link_and_a_floor_above_a_cap() -> None:
    assert validate_network_spec({"linkMbps": 100, "batchEgressMbps": 50, "batchFloorMbps": 10}) == []
    assert validate_network_spec({"linkMbps": 100, "batchEgressMbps": 200}) == [
        ("spec.network.batchEgressMbps", "Invalid value: 200: must be less than or equal to linkMbps (100)",
         "FieldValueInvalid")]
    assert validate_network_spec({"batchIngressMbps": 5, "batchFloorMbps": 10}) == [
        ("spec.network.batchFloorMbps", "Invalid value: 10: must be less than or equal to batchIngressMbps (5)",
         "FieldValueInvalid")]
    assert validate_network_spec({"threshold": 0})[0][:2] == ("spec.network.threshold",
                                                              "Invalid value: 0: must be greater than 0")
    # Beside the other rules of the NodeSLO: every cause is reported.
    causes = validate_slo_spec({"memoryEvictLow": 0.95, "network": {"linkMbps": 10, "batchEgressMbps": 20}})
    assert [c[0] for c in causes] == ["spec.memoryEvictLow", "spec.network.batchEgressMbps"]
