"""Probes in a pod spec: Kubernetes' validation messages, field paths and defaults."""

from __future__ import annotations

from typing import Any

import pytest

from sigma.api.validation import apply_defaults, validate


def pod(**probes: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox", **probes}]}}


def causes(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c.field, c.message) for c in validate("Pod", obj)]


HTTP = {"httpGet": {"port": 8080}}


@pytest.mark.parametrize(("probes", "expected"), [
    ({"livenessProbe": {**HTTP, "successThreshold": 2}},
     ("spec.containers[0].livenessProbe.successThreshold", "Invalid value: 2: must be 1")),
    ({"startupProbe": {**HTTP, "successThreshold": 3}},
     ("spec.containers[0].startupProbe.successThreshold", "Invalid value: 3: must be 1")),
    ({"readinessProbe": {"periodSeconds": 1}},
     ("spec.containers[0].readinessProbe", "Required value: must specify a handler type")),
    ({"readinessProbe": {**HTTP, "tcpSocket": {"port": 80}}},
     ("spec.containers[0].readinessProbe.tcpSocket", "Forbidden: may not specify more than 1 handler type")),
    ({"readinessProbe": {**HTTP, "terminationGracePeriodSeconds": 5}},
     ("spec.containers[0].readinessProbe.terminationGracePeriodSeconds",
      "Invalid value: 5: must not be set for readinessProbes")),
    ({"livenessProbe": {"tcpSocket": {"port": "Bad_Name"}}},
     ("spec.containers[0].livenessProbe.tcpSocket.port",
      'Invalid value: "Bad_Name": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)')),
    ({"livenessProbe": {"httpGet": {"port": "a-very-long-port-name"}}},
     ("spec.containers[0].livenessProbe.httpGet.port",
      'Invalid value: "a-very-long-port-name": must be no more than 15 characters')),
    ({"livenessProbe": {"httpGet": {"port": 8080, "scheme": "FTP"}}},
     ("spec.containers[0].livenessProbe.httpGet.scheme", 'Unsupported value: "FTP": supported values: "HTTP", '
                                                        '"HTTPS"')),
    ({"livenessProbe": {"exec": {}}}, ("spec.containers[0].livenessProbe.exec.command", "Required value")),
    ({"livenessProbe": {"tcpSocket": {}}}, ("spec.containers[0].livenessProbe.tcpSocket.port", "Required value")),
    ({"livenessProbe": {"grpc": {"port": 9000}}},
     ("spec.containers[0].livenessProbe.grpc",
      "Forbidden: grpc probes are not supported by Sigma: use exec, httpGet or tcpSocket")),
])
def test_bad_probes_are_refused_naming_the_field(probes: dict[str, Any], expected: tuple[str, str]) -> None:
    assert expected in causes(pod(**probes))


def test_good_probes_pass_named_ports_included() -> None:
    ok = pod(livenessProbe={"httpGet": {"port": "http-alt", "path": "/healthz", "scheme": "HTTPS"}},
             readinessProbe={"tcpSocket": {"port": 5432}, "successThreshold": 3},
             startupProbe={"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": 5})
    assert causes(ok) == []


def test_the_period_may_not_be_negative_the_schema_says_so() -> None:
    fields = [f for f, _ in causes(pod(livenessProbe={**HTTP, "periodSeconds": -1}))]
    assert "spec.containers[0].livenessProbe.periodSeconds" in fields


def test_probe_defaults_are_kubernetes() -> None:
    obj = pod(livenessProbe={"httpGet": {"port": 80}, "periodSeconds": 0}, readinessProbe={"tcpSocket": {"port": 80}})
    apply_defaults("Pod", obj)
    live = obj["spec"]["containers"][0]["livenessProbe"]
    assert {k: live[k] for k in ("timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold")} == \
        {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert live["httpGet"] == {"port": 80, "path": "/", "scheme": "HTTP"}
    assert obj["spec"]["containers"][0]["readinessProbe"]["periodSeconds"] == 10
