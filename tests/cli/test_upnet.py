"""`sigma up --pod-network auto|on|off`: the decision (sigma.cli.upnet)."""

from __future__ import annotations

import pytest

from sigma.cli.upnet import choose_pod_network


def test_auto_turns_it_on_when_nothing_is_missing() -> None:
    assert choose_pod_network("auto", None, None).on


def test_auto_falls_back_to_the_host_network_and_says_why() -> None:
    lacking = choose_pod_network("auto", "CNI plugins bridge not found in /usr/lib/cni", None)
    assert not lacking.on and "CNI plugins bridge" in lacking.note
    taken = choose_pod_network("auto", None, "pid 42, state /srv/a")
    assert not taken.on and "pid 42" in taken.note


def test_on_refuses_to_start_without_it() -> None:
    with pytest.raises(ValueError, match="--pod-network on: network namespaces need root"):
        choose_pod_network("on", "network namespaces need root", None)
    assert choose_pod_network("on", None, None).on


def test_off_is_off_whatever_the_machine_has() -> None:
    assert choose_pod_network("off", None, None) == choose_pod_network("off", "no root", "pid 1")
    assert not choose_pod_network("off", None, None).on


def test_an_unknown_choice_is_refused() -> None:
    with pytest.raises(ValueError, match="--pod-network must be one of auto, on, off"):
        choose_pod_network("yes", None, None)
