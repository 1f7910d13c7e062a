"""The typed view of a pod: its fields as they are, their empty values when missing or malformed."""

from __future__ import annotations

from sigma.api.podview import PodView


def test_a_bound_running_pod_reads_as_written() -> None:
    view = PodView.of({"metadata": {"namespace": "web", "name": "api-1", "uid": "u1"},
                       "spec": {"nodeName": "n1", "schedulerName": "fuxi-scheduler"},
                       "status": {"phase": "Running"}})
    assert view == PodView("web", "api-1", "u1", "n1", "fuxi-scheduler", "Running")
    assert (view.key, view.terminal) == (("web", "api-1"), False)


def test_missing_and_malformed_fields_read_as_empty() -> None:
    view = PodView.of({"metadata": {"name": 7}, "spec": None, "status": "broken"})
    assert view == PodView("", "", "", "", "", "")
    assert view.terminal is False


def test_succeeded_and_failed_pods_are_terminal() -> None:
    assert [PodView.of({"status": {"phase": p}}).terminal for p in ("Pending", "Succeeded", "Failed")] == [
        False, True, True]
