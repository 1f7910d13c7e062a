"""The official kubernetes Python client against a real `sigma master` (never skipped)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.harness import MasterProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def core(master: MasterProcess) -> Iterator[client.CoreV1Api]:
    config = client.Configuration()
    config.host = master.url
    with client.ApiClient(config) as api:
        yield client.CoreV1Api(api)


def make_pod(name: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": "kc"}),
        spec=client.V1PodSpec(containers=[client.V1Container(
            name="c", image="busybox", command=["sleep", "60"],
            resources=client.V1ResourceRequirements(requests={"cpu": "250m", "memory": "32Mi"}))]),
    )


def test_the_client_creates_lists_patches_and_deletes_pods(core: client.CoreV1Api, ns: str) -> None:
    created = core.create_namespaced_pod(ns, make_pod("kc-1"))
    assert created.metadata.uid and created.status.phase == "Pending"
    assert created.spec.scheduler_name == "sigma-scheduler"
    names = [p.metadata.name for p in core.list_namespaced_pod(ns).items]
    assert names == ["kc-1"]
    patched = core.patch_namespaced_pod("kc-1", ns, {"metadata": {"labels": {"tier": "gold"}}})
    assert patched.metadata.labels == {"app": "kc", "tier": "gold"}
    assert core.list_namespaced_pod(ns, label_selector="tier=gold").items[0].metadata.name == "kc-1"
    assert core.list_namespaced_pod(ns, label_selector="tier!=gold").items == []
    core.delete_namespaced_pod("kc-1", ns)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("kc-1", ns)
    assert err.value.status == 404


def test_the_client_sees_a_conflict_on_a_stale_replace(core: client.CoreV1Api, ns: str) -> None:
    pod = core.create_namespaced_pod(ns, make_pod("kc-2"))
    pod.metadata.labels = {"v": "1"}
    core.replace_namespaced_pod("kc-2", ns, pod)
    pod.metadata.labels = {"v": "2"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_pod("kc-2", ns, pod)  # still carries the old resourceVersion
    assert err.value.status == 409


def test_the_client_watches_pod_events(core: client.CoreV1Api, ns: str) -> None:
    seen: list[tuple[str, str]] = []
    # Watching from the list's resourceVersion delivers every later change, however soon
    # after it the writes below happen.
    since = core.list_namespaced_pod(ns).metadata.resource_version

    def consume() -> None:
        w = watch.Watch()
        for event in w.stream(core.list_namespaced_pod, ns, resource_version=since, timeout_seconds=10):
            seen.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                w.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    core.create_namespaced_pod(ns, make_pod("kc-w"))
    core.patch_namespaced_pod("kc-w", ns, {"metadata": {"labels": {"x": "y"}}})
    core.delete_namespaced_pod("kc-w", ns)
    thread.join(timeout=15)
    assert ("ADDED", "kc-w") in seen and ("MODIFIED", "kc-w") in seen and ("DELETED", "kc-w") in seen


def test_the_client_reads_discovery_and_version(master: MasterProcess) -> None:
    config = client.Configuration()
    config.host = master.url
    with client.ApiClient(config) as api:
        assert client.VersionApi(api).get_code().major == "1"
        groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
        assert {"apps", "scheduling.k8s.io", "coordination.k8s.io", "sigma.io"} <= groups
        classes = {pc.metadata.name: pc.value for pc in client.SchedulingV1Api(api).list_priority_class().items}
        assert classes["sigma-prod"] == 9000 and classes["sigma-batch"] == 5000
