from __future__ import annotations

import pytest

from sigma.colocation.queues import FairShare, QueueConfig, parse_queues

TOTAL = (10_000, 10_000)


def test_a_queue_under_its_minimum_goes_first() -> None:
    fair = FairShare({"etl": QueueConfig("etl", min_share=0.5)}, TOTAL, {"etl": (3000, 0), "adhoc": (100, 0)})
    assert fair.next_queue(["adhoc", "etl"]) == "etl"


def test_above_their_minimum_the_smallest_weighted_dominant_share_goes_first() -> None:
    queues = {"a": QueueConfig("a", weight=2.0), "b": QueueConfig("b")}
    # a: dominant share 0.4 (memory) / 2 = 0.2; b: 0.3 / 1.
    fair = FairShare(queues, TOTAL, {"a": (1000, 4000), "b": (3000, 0)})
    assert fair.next_queue(["a", "b"]) == "a"


def test_the_allowance_stops_at_the_max_share() -> None:
    fair = FairShare({"a": QueueConfig("a", max_share=0.3)}, TOTAL, {"a": (1000, 0)})
    assert fair.allowance("a", (500, 100)) == 4  # (3000 - 1000) / 500
    fair.charge("a", (500, 100), 4)
    assert fair.allowance("a", (500, 100)) == 0


def test_queues_parse_from_the_config_and_reject_nonsense() -> None:
    queues = parse_queues({"queues": [{"name": "etl", "minShare": 0.2, "maxShare": 0.6, "weight": 2}]})
    assert queues["etl"] == QueueConfig("etl", 0.2, 0.6, 2.0)
    with pytest.raises(ValueError, match="queues\\[0\\]"):
        parse_queues({"queues": [{"name": "x", "minShare": 0.9, "maxShare": 0.5}]})
