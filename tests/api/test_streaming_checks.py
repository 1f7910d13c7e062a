"""What the master decides before streaming (sigma.api.streaming_checks): pure."""

from __future__ import annotations

from typing import Any

import pytest

from sigma.api.errors import ApiError
from sigma.api.streaming_checks import PlainError, choose_protocol, plan


def pod(phase: str = "Running", containers: tuple[str, ...] = ("main",), running: tuple[str, ...] = ("main",),
        node: str = "n1", annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns", "annotations": annotations or {}},
            "spec": {"nodeName": node, "containers": [{"name": c} for c in containers]},
            "status": {"phase": phase, "containerStatuses": [
                {"name": c, "state": {"running": {}} if c in running else {"waiting": {}}} for c in containers]}}


def message(err: pytest.ExceptionInfo[ApiError]) -> tuple[int, str]:
    return err.value.code, str(err.value.status()["message"])


def test_exec_plan_names_the_agent_path_and_flags() -> None:
    p = plan(pod(), "exec", {"command": ["sh", "-c", "echo hi"], "stdin": ["true"], "stdout": ["true"],
                             "stderr": ["true"]})
    assert p.node == "n1" and p.container == "main"
    assert p.agent_path == ("exec", "ns", "p", "main")
    assert p.query == (("stdin", "1"), ("stdout", "1"), ("stderr", "1"), ("tty", "0"), ("command", "sh"),
                       ("command", "-c"), ("command", "echo hi"))


@pytest.mark.parametrize(("the_pod", "sub", "query", "expected"), [
    (pod("Succeeded"), "exec", {"command": ["true"]},
     (400, "cannot exec into a container in a completed pod; current phase is Succeeded")),
    (pod("Failed"), "attach", {}, (400, "cannot attach to a container in a completed pod; current phase is Failed")),
    (pod(), "exec", {"command": ["true"], "container": ["nope"]}, (400, "container nope is not valid for pod p")),
    (pod(containers=("a", "b"), running=("a", "b")), "exec", {"command": ["true"]},
     (400, "a container name must be specified for pod p, choose one of: ['a', 'b']")),
    (pod(), "exec", {}, (400, "you must specify at least 1 command")),
    (pod(), "exec", {"command": ["true"], "stdout": ["false"], "stderr": ["false"]},
     (400, "you must specify at least one of stdin, stdout, stderr")),
    (pod(), "exec", {"command": ["true"], "tty": ["true"], "stderr": ["true"]},
     (400, "tty and stderr cannot both be true")),
    (pod(), "portforward", {"ports": ["0"]}, (400, "invalid port '0': it must be between 1 and 65535")),
])
def test_refusals_are_kubernetes_statuses(the_pod: dict[str, Any], sub: str, query: dict[str, list[str]],
                                          expected: tuple[int, str]) -> None:
    with pytest.raises(ApiError) as err:
        plan(the_pod, sub, query)
    assert message(err) == expected


def test_the_default_container_annotation_picks_among_several() -> None:
    the_pod = pod(containers=("a", "b"), running=("a", "b"),
                  annotations={"kubectl.kubernetes.io/default-container": "b"})
    assert plan(the_pod, "exec", {"command": ["true"]}).container == "b"


@pytest.mark.parametrize("the_pod", [pod(running=()), pod(node=""), pod("Pending", running=())])
def test_a_container_that_does_not_run_is_the_kubelets_plain_404(the_pod: dict[str, Any]) -> None:
    with pytest.raises(PlainError) as err:
        plan(the_pod, "exec", {"command": ["true"]})
    assert (err.value.code, err.value.message) == (404, 'container not found ("main")')


def test_port_forward_needs_a_running_pod_and_passes_its_ports() -> None:
    assert plan(pod(), "portforward", {"ports": ["8080,9090"]}).query == (("ports", "8080"), ("ports", "9090"))
    with pytest.raises(PlainError, match="pod not running"):
        plan(pod("Pending"), "portforward", {})


def test_the_newest_protocol_both_speak_is_chosen() -> None:
    assert choose_protocol("exec", ["v4.channel.k8s.io", "v5.channel.k8s.io"]) == "v5.channel.k8s.io"
    assert choose_protocol("attach", ["v4.channel.k8s.io", "channel.k8s.io"]) == "v4.channel.k8s.io"
    assert choose_protocol("exec", ["channel.k8s.io", "base64.channel.k8s.io"]) is None
    assert choose_protocol("portforward", ["SPDY/3.1+portforward.k8s.io", "v4.channel.k8s.io"]) == \
        "SPDY/3.1+portforward.k8s.io"
