"""The cpuset suppress policy (ladder.suppress_cpuset) and the NodeSLO field that picks it."""

from __future__ import annotations

from typing import Any

import pytest

from sigma.api import colocation_kinds
from sigma.api.validation import validate
from sigma.colocation.ladder import (
    CFS_QUOTA,
    CPUSET,
    format_cpus,
    parse_cpus,
    shared_cpus,
    suppress_cpuset,
)
from sigma.colocation.slo import node_slo

EIGHT = range(8)

colocation_kinds.install()  # the NodeSLO validator, as the API installs it


@pytest.mark.parametrize(("node", "exclusive", "prod", "threshold", "current", "cpus"), [
    # room = 8000 x 0.65 - prod; N = max(1, room // 1000), the highest CPUs first
    (EIGHT, (), 0, 0.65, (), "3-7"),  # 5200m: 5 CPUs
    (EIGHT, (), 1200, 0.65, (), "4-7"),  # 4000m: 4
    (EIGHT, (), 3000, 0.65, (), "6-7"),  # 2200m: 2
    (EIGHT, (), 4300, 0.65, (), "7"),  # 900m: the floor of one
    (EIGHT, (), 8000, 0.65, (), "7"),  # no room at all: still one
    (EIGHT, (6, 7), 0, 0.65, (), "1-5"),  # prod's exclusive cores are never batch's
    (EIGHT, (0, 1, 7), 3000, 0.65, (), "5-6"),
    (EIGHT, (2, 3), 0, 1.0, (), "0-1,4-7"),  # threshold 1: every shared CPU
    (EIGHT, (), 7000, 1.5, (), "0-7"),
    (range(2), (), 1000, 0.65, (), "1"),  # this machine: 2 CPUs, a busy prod core
    (range(2), (), 0, 1.0, (), "0-1"),
    (range(2), (0,), 0, 0.9, (), "1"),
    (range(2), (0, 1), 0, 0.9, (), "1"),  # prod holds everything: batch keeps one CPU
    (range(4), (), 0, 0.65, (), "2-3"),  # 2600m: 2
    (range(4), (), 0, 0.99, (), "1-3"),  # 3960m: 3, rounded down
])
def test_batch_gets_whole_cpus_from_the_top_never_prods_exclusive_ones(
        node: range, exclusive: tuple[int, ...], prod: int, threshold: float, current: tuple[int, ...],
        cpus: str) -> None:
    capacity = len(node) * 1000
    choice = suppress_cpuset(node, exclusive, capacity, threshold, prod, current)
    assert choice.text == cpus, choice.reason
    assert not set(choice.cpus) & set(exclusive) or set(exclusive) >= set(node)
    assert choice.reason


def test_the_choice_is_stable_while_n_does_not_change() -> None:
    first = suppress_cpuset(EIGHT, (), 8000, 0.65, 3000)  # 2 CPUs
    assert first.text == "6-7"
    # Batch was moved elsewhere (an exclusive pod came and went): same N keeps those CPUs.
    assert suppress_cpuset(EIGHT, (), 8000, 0.65, 3100, (2, 5)).cpus == (2, 5)
    for prod in (3000, 3050, 3199):
        assert suppress_cpuset(EIGHT, (), 8000, 0.65, prod, first.cpus).cpus == first.cpus
    # Growing keeps what batch has and adds the highest free ones; shrinking drops the lowest.
    assert suppress_cpuset(EIGHT, (), 8000, 0.65, 1200, (2, 5)).cpus == (2, 5, 6, 7)
    assert suppress_cpuset(EIGHT, (), 8000, 0.65, 4300, (2, 5)).cpus == (5,)
    # A CPU taken exclusively by prod since is dropped and replaced.
    assert suppress_cpuset(EIGHT, (5,), 8000, 0.65, 3000, (2, 5)).cpus == (2, 7)
    # From the cfsQuota policy's "every CPU": the highest N.
    assert suppress_cpuset(EIGHT, (), 8000, 0.65, 3000, tuple(EIGHT)).cpus == (6, 7)


def test_the_reason_says_why() -> None:
    assert "floor of one CPU" in suppress_cpuset(range(2), (), 2000, 0.65, 1000).reason
    assert "2 CPU(s)" in suppress_cpuset(EIGHT, (), 8000, 0.65, 3000).reason
    assert "no headroom" in suppress_cpuset(EIGHT, (), 8000, 1.0, 3000).reason


@pytest.mark.parametrize(("text", "cpus"), [("", ()), ("0", (0,)), ("0-3", (0, 1, 2, 3)), ("1,3-4,7", (1, 3, 4, 7)),
                                            ("0-1\n", (0, 1))])
def test_cpu_lists_round_trip(text: str, cpus: tuple[int, ...]) -> None:
    assert parse_cpus(text) == cpus
    assert format_cpus(cpus) == text.strip()


def test_shared_cpus_never_runs_dry() -> None:
    assert shared_cpus(range(4), (0, 1)) == (2, 3)
    assert shared_cpus(range(4), range(4)) == (3,)
    assert shared_cpus((), ()) == ()


# -- the NodeSLO field -----------------------------------------------------------------------
def test_the_node_slo_reads_the_policy_and_defaults_to_the_quota() -> None:
    assert node_slo({}).cpu_suppress_policy == CFS_QUOTA
    assert node_slo({"cpuSuppressPolicy": "cpuset"}).cpu_suppress_policy == CPUSET
    assert node_slo({"cpuSuppressPolicy": "cfsQuota"}).cpu_suppress_policy == CFS_QUOTA
    assert node_slo({"cpuSuppressPolicy": "bogus"}).cpu_suppress_policy == CFS_QUOTA  # tolerant reader


def slo(spec: Any) -> dict[str, Any]:
    return {"apiVersion": "sigma.io/v1", "kind": "NodeSLO", "metadata": {"name": "node-1"}, "spec": spec}


@pytest.mark.parametrize("policy", ["cfsQuota", "cpuset", None])
def test_the_api_accepts_both_policies(policy: str | None) -> None:
    spec = {"cpuThreshold": 0.65} if policy is None else {"cpuThreshold": 0.65, "cpuSuppressPolicy": policy}
    assert validate("NodeSLO", slo(spec)) == []


@pytest.mark.parametrize("policy", ["cpusets", "CPUSET", "", 1, True, ["cpuset"]])
def test_the_api_refuses_any_other_policy_with_the_field_path(policy: Any) -> None:
    causes = validate("NodeSLO", slo({"cpuSuppressPolicy": policy}))
    assert [c.field for c in causes] == ["spec.cpuSuppressPolicy"]
    assert causes[0].reason == "FieldValueNotSupported"
    assert '"cfsQuota", "cpuset"' in causes[0].message
