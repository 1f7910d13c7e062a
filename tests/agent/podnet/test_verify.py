"""What ensure does with a sandbox record (sigma.agent.podnet.verify, pure)."""

from __future__ import annotations

from typing import Any

import pytest

from sigma.agent.podnet.conflist import conflist
from sigma.agent.podnet.verify import Plan, check_list, plan, previous_address, repair_reason, supports_check


def record(version: str = "1.0.0", result: dict[str, Any] | None = None) -> dict[str, Any]:
    listed = conflist("10.244.1.0/24", "/ipam")
    listed["cniVersion"] = version
    return {"uid": "u", "conflist": listed, "result": result if result is not None else {"ips": []},
            "ips": ["10.244.1.5"]}


def test_a_finished_sandbox_of_an_earlier_agent_is_checked_once() -> None:
    assert plan(record(), netns_exists=True, checked=False) is Plan.CHECK
    assert plan(record(), netns_exists=True, checked=True) is Plan.USE  # ADDed or CHECKed by this agent


def test_no_check_before_an_add_finished_or_after_the_netns_went() -> None:
    assert plan(None, netns_exists=False, checked=False) is Plan.ADD
    half_made = {**record(), "result": None}
    assert plan(half_made, netns_exists=True, checked=False) is Plan.ADD
    assert plan(record(), netns_exists=False, checked=True) is Plan.ADD


@pytest.mark.parametrize(("version", "supported"), [
    ("0.3.1", False), ("0.2.0", False), ("0.4.0", True), ("1.0.0", True), ("1.1.0", True), ("", False),
    ("one", False)])
def test_check_exists_from_spec_version_0_4_0(version: str, supported: bool) -> None:
    assert supports_check(version) is supported
    assert plan(record(version), netns_exists=True, checked=False) is (Plan.CHECK if supported else Plan.USE)


def test_a_capability_plugin_without_a_value_is_not_checked() -> None:
    listed = conflist("10.244.1.0/24", "/ipam")
    assert [p["type"] for p in check_list(listed, {})["plugins"]] == ["bridge", "loopback"]
    shaped = check_list(listed, {"bandwidth": {"ingressRate": 1000}})
    assert [p["type"] for p in shaped["plugins"]] == ["bridge", "bandwidth", "loopback"]
    assert check_list(listed, {})["cniVersion"] == listed["cniVersion"] and len(listed["plugins"]) == 3


def test_a_re_add_asks_for_the_same_address_and_says_why() -> None:
    assert previous_address(record()) == ["10.244.1.5"]
    assert previous_address({"ips": None}) == []
    why = repair_reason('plugin type="bridge" failed (check): link eth0 not found')
    assert why == ('CNI CHECK of the sandbox failed (plugin type="bridge" failed (check): link eth0 not found): '
                   "deleted and added again")
