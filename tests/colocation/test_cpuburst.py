"""CPU Burst's strategy (sigma.colocation.cpuburst): reading it, the burst it gives a quota,
and what the API refuses in a NodeSLO."""

from __future__ import annotations

from typing import Any

import pytest

from sigma.api import colocation_kinds
from sigma.api.schema import KIND_SCHEMAS, prune, type_errors
from sigma.api.validation import validate
from sigma.colocation.cpuburst import (
    CPU_BURST_ONLY,
    DEFAULT_CPU_BURST,
    DEFAULT_PERCENT,
    NONE,
    CpuBurst,
    burst_us,
    cpu_burst,
    validate_cpu_burst,
)
from sigma.colocation.slo import node_slo

colocation_kinds.install()  # the NodeSLO schema and validator, as the API installs them


def test_no_strategy_means_no_burst_at_koordinators_default_percent() -> None:
    assert cpu_burst(None) == CpuBurst(NONE, DEFAULT_PERCENT) == node_slo({}).cpu_burst
    assert DEFAULT_PERCENT == 1000
    assert burst_us(30_000, cpu_burst(None)) == 0


def test_the_node_slo_reads_the_strategy() -> None:
    slo = node_slo({"cpuBurstStrategy": {"policy": CPU_BURST_ONLY, "cpuBurstPercent": 50}})
    assert slo.cpu_burst == CpuBurst(CPU_BURST_ONLY, 50)


@pytest.mark.parametrize("spec", [{"policy": "auto"}, {"policy": 1}, {"cpuBurstPercent": -1},
                                  {"cpuBurstPercent": True}, {"cpuBurstPercent": 1e9}, "cpuBurstOnly", []])
def test_a_value_written_behind_the_apis_back_takes_its_default(spec: Any) -> None:
    assert cpu_burst(spec) == DEFAULT_CPU_BURST


@pytest.mark.parametrize(("quota", "percent", "want"), [
    (30_000, 1000, 30_000),  # the kernel refuses a burst above the quota: capped at it
    (30_000, 100, 30_000),
    (30_000, 50, 15_000),
    (30_000, 0, 0),
    (None, 1000, 0),  # no limit: nothing to burst past
    (0, 1000, 0),
])
def test_the_burst_is_a_share_of_the_quota_never_above_it(quota: int | None, percent: int, want: int) -> None:
    assert burst_us(quota, CpuBurst(CPU_BURST_ONLY, percent)) == want
    assert burst_us(quota, CpuBurst(NONE, percent)) == 0


def slo(spec: Any) -> dict[str, Any]:
    return {"apiVersion": "sigma.io/v1", "kind": "NodeSLO", "metadata": {"name": "node-1"}, "spec": spec}


@pytest.mark.parametrize("strategy", [{}, {"policy": "none"}, {"policy": CPU_BURST_ONLY},
                                      {"policy": CPU_BURST_ONLY, "cpuBurstPercent": 10_000}])
def test_the_api_accepts_the_strategy(strategy: dict[str, Any]) -> None:
    assert validate("NodeSLO", slo({"cpuBurstStrategy": strategy})) == []


@pytest.mark.parametrize(("strategy", "field"), [
    ({"policy": "auto"}, "spec.cpuBurstStrategy.policy"),
    ({"policy": "CPUBurstOnly"}, "spec.cpuBurstStrategy.policy"),
    ({"cpuBurstPercent": -1}, "spec.cpuBurstStrategy.cpuBurstPercent"),
    ({"cpuBurstPercent": 10_001}, "spec.cpuBurstStrategy.cpuBurstPercent"),
    ({"cpuBurstPercent": "100"}, "spec.cpuBurstStrategy.cpuBurstPercent"),
    ({"cfsQuotaBurstPercent": 300}, "spec.cpuBurstStrategy.cfsQuotaBurstPercent"),
])
def test_the_api_refuses_a_bad_strategy_naming_the_field(strategy: dict[str, Any], field: str) -> None:
    """Each step the API takes on a write (sigma.api.registry_core.prepare): the types, the
    unknown fields, then the rules; the field is named by whichever refuses it."""
    obj = slo({"cpuBurstStrategy": strategy})
    schema = KIND_SCHEMAS["NodeSLO"]
    unknown: list[str] = []
    prune(obj, schema, "", unknown)
    fields = [p for p, _ in type_errors(obj, schema, "")] + unknown + [c.field for c in validate("NodeSLO", obj)]
    assert field in fields, fields


def test_the_policy_message_lists_what_is_supported() -> None:
    (path, message, reason), = validate_cpu_burst({"policy": "auto"})
    assert path == "spec.cpuBurstStrategy.policy" and reason == "FieldValueNotSupported"
    assert '"none", "cpuBurstOnly"' in message
    assert validate_cpu_burst({"policy": CPU_BURST_ONLY}) == [] == validate_cpu_burst(None)
