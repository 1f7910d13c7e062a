"""The demo's batch queue: one demo-batch-N unfinished at a time, the next submitted when it
finishes, the oldest finished ones deleted; against a real registry, jobs the API accepts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sigma.client.local import LocalClient
from sigma.demo.batchqueue import BatchQueue, plan_queue
from tests.registry_client import admitted_client


def job(name: str, phase: str | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name}, **({"status": {"phase": phase}} if phase else {})}


def test_an_empty_queue_submits_the_first_job() -> None:
    step = plan_queue([])
    assert step.create == ("demo-batch-1",) and step.delete == ()


def test_a_running_or_new_job_fills_the_queue() -> None:
    assert plan_queue([job("demo-batch-1", "Succeeded"), job("demo-batch-2")]).create == ()
    assert plan_queue([job("demo-batch-3", "Running")]).create == ()


def test_a_finished_job_is_followed_by_the_next_number_and_old_ones_go() -> None:
    jobs = [job(f"demo-batch-{n}", "Succeeded") for n in (1, 2, 9)] + [job("demo-batch-10", "Failed")]
    step = plan_queue(jobs, depth=1, keep=2)
    assert step.create == ("demo-batch-11",)  # after the highest number, not the count
    assert step.delete == ("demo-batch-1", "demo-batch-2")


def test_jobs_named_otherwise_are_not_the_queues() -> None:
    step = plan_queue([job("demo-dag", "Running"), job("demo-batch-x"), job("demo-batch-2-old")])
    assert step.create == ("demo-batch-1",) and step.delete == ()


def test_a_deeper_queue_submits_several() -> None:
    assert plan_queue([job("demo-batch-4", "Running")], depth=3).create == ("demo-batch-5", "demo-batch-6")


@pytest.fixture
def client() -> Iterator[LocalClient]:
    with admitted_client() as local:
        yield local


def test_the_queue_submits_jobs_the_api_accepts_and_resubmits_when_one_finishes(client: LocalClient) -> None:
    queue = BatchQueue(client)
    assert queue.tick().create == ("demo-batch-1",)
    assert queue.tick().create == ()  # demo-batch-1 is queued: nothing more
    first = client.get("batchjobs", "demo-batch-1", "default")
    assert first["metadata"]["labels"] == {"app": "demo-batch"}
    assert [t["instances"] for t in first["spec"]["tasks"]] == [1]
    client.patch("batchjobs", "demo-batch-1", {"status": {"phase": "Succeeded"}}, "default", subresource="status")
    assert queue.tick().create == ("demo-batch-2",)
    names = {j["metadata"]["name"] for j in client.list("batchjobs", "default")["items"]}
    assert names == {"demo-batch-1", "demo-batch-2"}

