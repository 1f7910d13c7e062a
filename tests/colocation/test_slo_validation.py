"""NodeSLO's cross-field rules (sigma.colocation.slo.validate_slo_spec)."""

from __future__ import annotations

from sigma.colocation.slo import validate_slo_spec


def test_level0_may_not_offer_memory_the_ladder_would_evict_at_once() -> None:
    causes = validate_slo_spec({"memoryThreshold": 0.95})  # the ladder evicts down to 0.85 by default
    assert [c[0] for c in causes] == ["spec.memoryThreshold"]
    assert "memoryEvictLow (0.85)" in causes[0][1]
    assert validate_slo_spec({"memoryThreshold": 0.95, "memoryEvictLow": 0.95, "memoryEvictHigh": 0.97}) == []
    assert validate_slo_spec({"memoryThreshold": 0.85}) == []
    assert validate_slo_spec({}) == []


def test_the_eviction_band_must_be_ordered() -> None:
    causes = validate_slo_spec({"memoryEvictLow": 0.95, "memoryEvictHigh": 0.9})
    assert [c[0] for c in causes] == ["spec.memoryEvictLow"]
