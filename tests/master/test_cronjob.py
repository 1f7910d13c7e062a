"""The CronJob controller in process, on a clock the test moves (the only fake: the time):
runs on a `* * * * *` schedule, Forbid, Replace, history limits, the missed-start deadline."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from sigma.api import admission
from sigma.api.objects import now_rfc3339
from sigma.api.registry import Registry
from sigma.client.local import LocalClient
from sigma.master.controllers.cronjob import CronJobController
from sigma.master.controllers.cronjob_plan import SCHEDULED_TIMESTAMP
from sigma.store.sqlite import SqliteStore

T0 = dt.datetime(2026, 3, 1, 10, 0, 30, tzinfo=dt.UTC).timestamp()


def cron_job(**spec: Any) -> dict[str, Any]:
    template = {"spec": {"template": {"spec": {"restartPolicy": "Never",
                                               "containers": [{"name": "c", "command": ["true"]}]}}}}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
            "spec": {"schedule": "* * * * *", "jobTemplate": template, **spec}}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(clock: Clock) -> Iterator[LocalClient]:
    """The in-process API on the test's clock: creation times are the test's too."""
    store = SqliteStore(":memory:")
    registry = Registry(store, clock=clock)
    admission.install(registry)
    admission.bootstrap(registry)
    yield LocalClient(registry)
    store.close()


def jobs(client: LocalClient) -> list[dict[str, Any]]:
    return sorted(client.list("jobs", "default")["items"], key=lambda j: j["metadata"]["name"])


def finish(client: LocalClient, name: str, outcome: str = "Complete") -> None:
    job = client.get("jobs", name, "default")
    job["status"] = {"conditions": [{"type": outcome, "status": "True", "lastTransitionTime": now_rfc3339(T0)}],
                     **({"completionTime": now_rfc3339(T0)} if outcome == "Complete" else {})}
    client.update("jobs", job, "default", subresource="status")


def test_every_minute_a_job_named_by_its_scheduled_minute(client: LocalClient, clock: Clock) -> None:
    created = client.create("cronjobs", cron_job(), "default")
    controller = CronJobController(client, clock=clock)
    clock.now = T0 - 30 + 60 + 1  # 10:01:01, created at 10:00:30
    recheck = controller.sync("default", "tick")
    assert recheck is not None and 0 < recheck <= 60
    [job] = jobs(client)
    minute = int(dt.datetime(2026, 3, 1, 10, 1, tzinfo=dt.UTC).timestamp()) // 60
    assert job["metadata"]["name"] == f"tick-{minute}"
    assert job["metadata"]["annotations"][SCHEDULED_TIMESTAMP] == "2026-03-01T10:01:00Z"
    assert job["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    status = client.get("cronjobs", "tick", "default")["status"]
    assert status["lastScheduleTime"] == "2026-03-01T10:01:00Z"
    assert status["active"][0]["name"] == job["metadata"]["name"]
    controller.sync("default", "tick")  # the same minute again: nothing new
    assert len(jobs(client)) == 1


def test_forbid_skips_while_a_run_is_active_then_starts_it(client: LocalClient, clock: Clock) -> None:
    client.create("cronjobs", cron_job(concurrencyPolicy="Forbid"), "default")
    controller = CronJobController(client, clock=clock)
    clock.now = T0 + 31
    controller.sync("default", "tick")
    clock.now = T0 + 91  # 10:02:01: the 10:01 run still active
    controller.sync("default", "tick")
    assert len(jobs(client)) == 1
    events = [e["reason"] for e in client.list("events", "default")["items"]]
    assert "JobAlreadyActive" in events
    finish(client, jobs(client)[0]["metadata"]["name"])
    controller.sync("default", "tick")  # the 10:02 run, late but not past any deadline
    assert len(jobs(client)) == 2
    assert client.get("cronjobs", "tick", "default")["status"]["lastSuccessfulTime"] == now_rfc3339(T0)


def test_replace_deletes_the_running_job_and_history_is_trimmed(client: LocalClient, clock: Clock) -> None:
    client.create("cronjobs", cron_job(concurrencyPolicy="Replace", failedJobsHistoryLimit=0), "default")
    controller = CronJobController(client, clock=clock)
    clock.now = T0 + 31
    controller.sync("default", "tick")
    first = jobs(client)[0]["metadata"]["name"]
    clock.now = T0 + 91
    controller.sync("default", "tick")
    names = [j["metadata"]["name"] for j in jobs(client)]
    assert first not in names and len(names) == 1
    finish(client, names[0], "Failed")
    controller.sync("default", "tick")
    assert jobs(client) == []  # failedJobsHistoryLimit 0


def test_a_start_later_than_its_deadline_is_skipped(client: LocalClient, clock: Clock) -> None:
    client.create("cronjobs", cron_job(schedule="0 * * * *", startingDeadlineSeconds=60), "default")
    controller = CronJobController(client, clock=clock)
    clock.now = T0 + 3600 + 600  # 11:10:30: the 11:00 run is 10 minutes late
    controller.sync("default", "tick")
    assert jobs(client) == []
    clock.now = T0 + 2 * 3600 - 30 + 5  # 12:00:05
    controller.sync("default", "tick")
    assert len(jobs(client)) == 1
