"""A node becoming schedulable retries parked pods at once (sigma.master.scheduler.nodechange
and SchedulingQueue.retry_now): what makes pods schedule promptly after `kubectl uncordon`."""

from __future__ import annotations

from sigma.master.scheduler.nodechange import opens_room
from sigma.master.scheduler.queue import SchedulingQueue
from sigma.scheduling.model import NodeSpec


def test_which_node_changes_open_room() -> None:
    cordoned = NodeSpec("n", {"cpu": 1000}, unschedulable=True)
    open_ = NodeSpec("n", {"cpu": 1000})
    assert opens_room(cordoned, open_) and opens_room(None, open_)
    assert not opens_room(open_, cordoned)
    assert not opens_room(open_, NodeSpec("n", {"cpu": 900}))
    assert opens_room(open_, NodeSpec("n", {"cpu": 2000}))


def test_parked_pods_retry_at_once_after_retry_now_but_not_after_a_mere_change() -> None:
    q = SchedulingQueue()
    q.add("p", 0)
    assert q.pop() == "p"
    for attempt in range(6):  # failures while every node was cordoned: the back-off grew
        q.park("p", now=float(attempt))
        q.cluster_changed()
    q.flush(now=6.0)
    assert q.pop() is None  # a plain change still waits for the back-off
    q.retry_now()
    q.flush(now=6.0)
    assert q.pop() == "p"


def test_back_off_is_capped_at_kube_schedulers_ten_seconds() -> None:
    q = SchedulingQueue()
    q.add("p", 0)
    q.pop()
    for _ in range(10):
        q.park("p", now=0.0)
    q.cluster_changed()
    wait = q.next_wakeup(now=0.0)
    assert wait is not None and wait <= 10.0
