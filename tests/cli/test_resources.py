"""The `sigma` resource commands against a real `sigma master` (in-process CLI, real server)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from sigma.cli import manifests
from sigma.cli.main import main
from sigma.client.http import HttpClient

MANIFEST = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web, sigma.io/qos: LS}
spec:
  priorityClassName: sigma-prod
  containers:
  - name: app
    image: busybox
    command: [sleep, "3600"]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - {name: app, image: busybox, command: [sleep, "3600"]}
"""


@pytest.fixture
def sigma(sigma_master: str, namespace: str, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run `sigma ARGS --server URL -n NS` in-process; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--server", sigma_master, "-n", namespace])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "app.yaml"
    path.write_text(MANIFEST)
    return path


def table(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if line.strip()]


@pytest.mark.e2e
def test_apply_creates_then_reports_unchanged_then_configured(sigma: Any, manifest: Path) -> None:
    assert sigma("apply", "-f", str(manifest)) == (0, "pod/web created\ndeployment.apps/api created\n", "")
    assert sigma("apply", "-f", str(manifest))[1] == "pod/web unchanged\ndeployment.apps/api unchanged\n"
    manifest.write_text(MANIFEST.replace("replicas: 2", "replicas: 3"))
    assert sigma("apply", "-f", str(manifest))[1] == "pod/web unchanged\ndeployment.apps/api configured\n"


@pytest.mark.e2e
def test_get_prints_the_servers_columns(sigma: Any, manifest: Path) -> None:
    sigma("apply", "-f", str(manifest))
    code, out, _ = sigma("get", "pods")
    rows = table(out)
    assert code == 0
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert rows[1][:4] == ["web", "0/1", "Pending", "0"]
    assert "NODE" in table(sigma("get", "pods", "-o", "wide")[1])[0]


@pytest.mark.e2e
def test_get_with_all_namespaces_puts_the_namespace_column_first(
        sigma: Any, manifest: Path, namespace: str) -> None:
    sigma("apply", "-f", str(manifest))
    rows = table(sigma("get", "deploy", "-A")[1])
    assert rows[0][:2] == ["NAMESPACE", "NAME"]
    assert [namespace, "api"] in [row[:2] for row in rows]


@pytest.mark.e2e
def test_get_prints_one_object_as_yaml_and_several_as_a_json_list(sigma: Any, manifest: Path) -> None:
    sigma("apply", "-f", str(manifest))
    pod = yaml.safe_load(sigma("get", "pod", "web", "-o", "yaml")[1])
    assert (pod["kind"], pod["metadata"]["name"]) == ("Pod", "web")
    listed = json.loads(sigma("get", "po,deploy", "-o", "json")[1])
    assert listed["kind"] == "List"
    kinds = [(i["kind"], i["metadata"]["name"]) for i in listed["items"]]
    assert kinds == [("Pod", "web"), ("Deployment", "api")]
    assert sigma("get", "all", "-o", "name")[1] == "pod/web\ndeployment.apps/api\n"


@pytest.mark.e2e
def test_get_with_a_selector_and_nothing_matching_says_no_resources_found(
        sigma: Any, manifest: Path, namespace: str) -> None:
    sigma("apply", "-f", str(manifest))
    nothing = sigma("get", "pods", "-l", "app=nothing")
    assert nothing == (0, "", f"No resources found in {namespace} namespace.\n")


@pytest.mark.e2e
def test_get_watch_prints_a_row_per_change(
        sigma: Any, client: HttpClient, namespace: str, manifest: Path) -> None:
    sigma("apply", "-f", str(manifest))

    def change_later() -> None:
        time.sleep(0.7)
        client.patch("pods", "web", {"metadata": {"labels": {"touched": "yes"}}}, namespace)
        client.delete("pods", "web", namespace)

    changer = threading.Thread(target=change_later)
    changer.start()
    code, out, _ = sigma("get", "pods", "-w", "--request-timeout", "3")
    changer.join()
    rows = table(out)
    assert code == 0
    assert rows[0][0] == "NAME"
    assert [row[0] for row in rows[1:]] == ["web", "web", "web"]  # listed, modified, deleted


@pytest.mark.e2e
def test_describe_pod_shows_node_state_qos_and_only_its_own_events(
        sigma: Any, client: HttpClient, namespace: str, manifest: Path) -> None:
    sigma("apply", "-f", str(manifest))
    client.bind("web", namespace, "node-1")
    container = {"name": "app", "ready": False, "restartCount": 3,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"reason": "Error", "exitCode": 137}}}
    status = {"phase": "Running", "podIP": "10.0.0.7", "containerStatuses": [container]}
    client.patch("pods", "web", {"status": status}, namespace, subresource="status")
    for name, pod, reason in (("web.1", "web", "Scheduled"), ("other.1", "other", "Pulled")):
        client.create("events", {
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
            "involvedObject": {"kind": "Pod", "name": pod, "namespace": namespace},
            "type": "Normal", "reason": reason, "message": f"about {pod}",
            "source": {"component": "sigma-scheduler"}}, namespace)
    code, out, _ = sigma("describe", "pod", "web")
    fields = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in out.splitlines()
              if ":" in line and not line.startswith(" " * 6)}
    assert code == 0
    assert fields["Name"] == "web"
    assert fields["Node"] == "node-1"
    assert fields["Priority"] == "9000"
    assert fields["Priority Class Name"] == "sigma-prod"
    assert fields["QoS Class"] == "LS"
    assert fields["IP"] == "10.0.0.7"
    assert fields["Restart Count"] == "3"
    assert "CrashLoopBackOff" in out and "Exit Code:" in out and "137" in out
    assert "PodScheduled" in out
    events = out.split("Events:", 1)[1]
    assert "Scheduled" in events and "about web" in events and "sigma-scheduler" in events
    assert "about other" not in events


@pytest.mark.e2e
def test_describe_renders_other_kinds_as_keys_and_values(sigma: Any, manifest: Path) -> None:
    sigma("apply", "-f", str(manifest))
    out = sigma("describe", "deploy", "api")[1]
    assert "Name:" in out and "api" in out
    assert "Spec:" in out and "replicas:" in out


@pytest.mark.e2e
def test_delete_removes_the_objects_and_says_so(sigma: Any, manifest: Path) -> None:
    sigma("apply", "-f", str(manifest))
    assert sigma("delete", "pod", "web", "--wait") == (0, 'pod "web" deleted\n', "")
    assert sigma("delete", "-f", str(manifest), "--ignore-not-found")[1] == 'deployment.apps "api" deleted\n'
    assert sigma("get", "pod", "web")[2] == 'Error from server (NotFound): pods "web" not found\n'


@pytest.mark.e2e
def test_scale_sets_the_replicas_through_the_scale_subresource(
        sigma: Any, client: HttpClient, namespace: str, manifest: Path) -> None:
    sigma("apply", "-f", str(manifest))
    assert sigma("scale", "deploy", "api", "--replicas", "4")[1] == "deployment.apps/api scaled\n"
    assert client.get("deployments", "api", namespace)["spec"]["replicas"] == 4


@pytest.mark.e2e
def test_api_errors_read_like_kubectl_and_exit_1(sigma: Any, manifest: Path, tmp_path: Path) -> None:
    assert sigma("get", "pod", "nope") == (1, "", 'Error from server (NotFound): pods "nope" not found\n')
    sigma("create", "-f", str(manifest))
    code, _, err = sigma("create", "-f", str(manifest))
    assert code == 1
    assert err.splitlines()[0] == \
        f'Error from server (AlreadyExists): error when creating "{manifest}": pods "web" already exists'
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: inv}\nspec: {containers: []}\n")
    code, _, err = sigma("apply", "-f", str(invalid))
    assert code == 1
    assert err.startswith('The Pod "inv" is invalid: spec.containers: Required value')


@pytest.mark.e2e
def test_malformed_yaml_is_reported_with_the_file_and_line(sigma: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n   labels: a\n")
    code, out, err = sigma("apply", "-f", str(bad))
    assert (code, out) == (1, "")
    assert err.startswith(f"error: error parsing {bad}: line 5")


@pytest.mark.e2e
def test_malformed_json_is_reported_with_the_file_and_line(sigma: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"apiVersion": "v1",\n "kind": "Pod",,}')
    assert sigma("apply", "-f", str(bad))[2].startswith(f"error: error parsing {bad}: line 2, column 16")


@pytest.mark.e2e
def test_an_unknown_kind_is_a_clear_error(sigma: Any, tmp_path: Path) -> None:
    unknown = sigma("get", "nosuchkind")
    assert unknown == (1, "", 'error: the server doesn\'t have a resource type "nosuchkind"\n')
    foo = tmp_path / "foo.yaml"
    foo.write_text("apiVersion: example.com/v1\nkind: Foo\nmetadata: {name: f}\n")
    assert 'no matches for kind "Foo" in version "example.com/v1"' in sigma("apply", "-f", str(foo))[2]


@pytest.mark.e2e
def test_logs_of_a_pod_that_never_ran_is_an_error_from_the_server(sigma: Any, manifest: Path) -> None:
    sigma("apply", "-f", str(manifest))
    code, _, err = sigma("logs", "web")
    assert code == 1
    assert err.startswith("Error from server (")


@pytest.mark.e2e
def test_version_prints_the_client_and_the_server(
        sigma_master: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version", "--server", sigma_master]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Client Version: v")
    assert "Server Version: v" in out


def test_an_unreachable_server_is_named_in_the_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "pods", "--server", "http://127.0.0.1:9"]) == 1
    assert "cannot reach the Sigma API server at http://127.0.0.1:9" in capsys.readouterr().err


@pytest.mark.e2e
def test_the_kubeconfig_gives_the_server_and_the_default_namespace(
        sigma_master: str, namespace: str, manifest: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "c", "cluster": {"server": sigma_master}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u", "namespace": namespace}}]}))
    monkeypatch.setenv("KUBECONFIG", str(config))
    assert main(["apply", "-f", str(manifest)]) == 0
    capsys.readouterr()
    assert main(["get", "pods", "-o", "name"]) == 0
    assert capsys.readouterr().out == "pod/web\n"


@pytest.mark.e2e
def test_the_sigma_console_script_runs_as_a_process(
        sigma_master: str, namespace: str, manifest: Path) -> None:
    script = str(Path(sys.executable).parent / "sigma")
    where = ["--server", sigma_master, "-n", namespace]
    applied = subprocess.run([script, "apply", "-f", "-", *where], input=manifest.read_text(),
                             capture_output=True, text=True, timeout=60)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout == "pod/web created\ndeployment.apps/api created\n"
    missing = subprocess.run([script, "get", "deploy", "nope", *where], capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 1
    assert missing.stderr == 'Error from server (NotFound): deployments.apps "nope" not found\n'


# -- manifests, without a server ------------------------------------------------------------------


def test_a_list_object_is_expanded_into_its_items() -> None:
    text = json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"}}]})
    assert [o["metadata"]["name"] for o in manifests.parse(text, "list.json")] == ["a", "b"]


def test_a_directory_yields_its_manifests_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n---\n")
    (tmp_path / "a.json").write_text('{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}')
    (tmp_path / "notes.txt").write_text("not a manifest")
    loaded = manifests.load([str(tmp_path)])
    found = [(Path(src).name, obj["metadata"]["name"]) for src, obj in loaded]
    assert found == [("a.json", "a"), ("b.yaml", "b")]


def test_a_document_without_a_kind_names_the_file_and_the_document() -> None:
    with pytest.raises(manifests.ManifestError, match=r"x.yaml: document 2: kind not set"):
        manifests.parse("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\n", "x.yaml")


def test_a_missing_file_is_named() -> None:
    with pytest.raises(manifests.ManifestError, match=r'the path "nope\.yaml" does not exist'):
        manifests.load(["nope.yaml"])

