"""Kubeconfig files: written as YAML documents (a path with ": " or "#" in it stays a
path), read by kubectl's rules ($KUBECONFIG a list merged first-wins, --kubeconfig first,
~/.kube/config before Sigma's own ./.sigma/kubeconfig)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from sigma.cli.master import write_kubeconfig
from sigma.client.join import write_node_kubeconfig
from sigma.client.kubeconfig import (
    KubeconfigNotFound,
    kubeconfig_paths,
    load_kubeconfig,
    merge_kubeconfigs,
)

PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


def config(path: Path, current: str | None, clusters: dict[str, dict[str, Any]],
           users: dict[str, dict[str, Any]], contexts: dict[str, dict[str, Any]]) -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
        "contexts": [{"name": n, "context": c} for n, c in contexts.items()]}
    if current:
        doc["current-context"] = current
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_path_with_colon_space_and_hash_survives_the_round_trip(tmp_path: Path) -> None:
    odd = tmp_path / "state: #1 'quoted' \"dq\" - [x]"
    odd.mkdir()
    ca = odd / "ca: root.crt"
    ca.write_text(PEM)
    path = odd / "kubeconfig"
    write_kubeconfig(path, "https://127.0.0.1:6443", "tok: en#1", ca)
    loaded = load_kubeconfig(str(path))
    assert loaded.server == "https://127.0.0.1:6443"
    assert loaded.ca_file == str(ca)
    assert loaded.token == "tok: en#1"
    assert loaded.namespace == "default"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds a credential


def test_rewriting_a_kubeconfig_keeps_it_private(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("old")
    os.chmod(path, 0o644)
    write_kubeconfig(path, "http://127.0.0.1:1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_kubeconfig(str(path)).token is None
    assert [p.name for p in tmp_path.iterdir()] == ["kubeconfig"]  # no temporary file left


def test_the_node_kubeconfig_keeps_its_user_and_ca(tmp_path: Path) -> None:
    path = tmp_path / "agent: one" / "kubeconfig"
    write_node_kubeconfig(path, "https://m:6443", {"user": "system:node:n1", "token": "t: 1", "caCertificate": PEM})
    doc = yaml.safe_load(path.read_text())
    assert doc["users"][0]["name"] == "system:node:n1"
    loaded = load_kubeconfig(str(path))
    assert (loaded.server, loaded.token, loaded.ca_data) == ("https://m:6443", "t: 1", PEM)


def test_kubeconfig_list_merges_first_wins(tmp_path: Path) -> None:
    first = config(tmp_path / "one" / "config", None,
                   {"shared": {"server": "https://first:1", "certificate-authority": "ca.crt"}},
                   {"u": {"token": "first-token"}},
                   {"shared": {"cluster": "shared", "user": "u", "namespace": "first-ns"}})
    second = config(tmp_path / "two" / "config", "shared",
                    {"shared": {"server": "https://second:2"}, "only-second": {"server": "https://second-only:3",
                                                                              "certificate-authority": "ca2.crt"}},
                    {"u": {"token": "second-token"}, "v": {"token": "v-token"}},
                    {"shared": {"cluster": "only-second"}, "other": {"cluster": "only-second", "user": "v"}})
    third = config(tmp_path / "three" / "config", "other", {}, {}, {})
    paths = [str(first), str(second), str(third)]
    merged = merge_kubeconfigs(paths)
    # current-context: the first file that sets it (the second; the third's is ignored)
    assert merged["current-context"] == "shared"
    loaded = load_kubeconfig(paths)
    # the context, its cluster and its user: each from the first file that names it, whole
    assert (loaded.server, loaded.token, loaded.namespace) == ("https://first:1", "first-token", "first-ns")
    assert loaded.ca_file == str(tmp_path / "one" / "ca.crt")  # relative to the file it came from
    other = load_kubeconfig(paths, "other")
    assert (other.server, other.token) == ("https://second-only:3", "v-token")
    assert other.ca_file == str(tmp_path / "two" / "ca2.crt")


def test_explicit_then_kubeconfig_list_then_home_then_sigma_up(tmp_path: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "work"
    user_config = config(home / ".kube" / "config", "h", {"h": {"server": "https://home:1"}}, {},
                         {"h": {"cluster": "h"}})
    local = config(cwd / ".sigma" / "kubeconfig", "s", {"s": {"server": "https://sigma-up:1"}}, {},
                   {"s": {"cluster": "s"}})
    listed = config(tmp_path / "env" / "config", "e", {"e": {"server": "https://env:1"}}, {}, {"e": {"cluster": "e"}})

    def paths(explicit: str | None = None, env: str | None = None) -> list[str]:
        return kubeconfig_paths(explicit, {"KUBECONFIG": env} if env is not None else {}, str(home), str(cwd))

    assert paths("/some/explicit") == ["/some/explicit"]
    missing = str(tmp_path / "missing")
    assert paths(None, os.pathsep.join([missing, str(listed), "", str(listed)])) == [str(listed)]
    assert paths() == [str(user_config)]
    assert paths(None, "") == [str(user_config)]  # an empty $KUBECONFIG is no list
    user_config.unlink()
    assert paths() == [str(local)]  # only when the user has no kubectl configuration at all
    # A $KUBECONFIG naming no existing file is an error, never a silent fall back to
    # ./.sigma/kubeconfig (another cluster than the user meant).
    with pytest.raises(KubeconfigNotFound, match=r"\$KUBECONFIG"):
        paths(None, missing)
    local.unlink()
    with pytest.raises(KubeconfigNotFound, match="--kubeconfig"):
        paths()


def test_sigma_get_reads_kubeconfig_not_the_sigma_up_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's connection: $KUBECONFIG beats a ./.sigma/kubeconfig in the working directory."""
    from argparse import Namespace

    from sigma.cli.common import connect

    monkeypatch.chdir(tmp_path)
    config(tmp_path / ".sigma" / "kubeconfig", "s", {"s": {"server": "https://sigma-up:1"}}, {},
           {"s": {"cluster": "s"}})
    mine = config(tmp_path / "mine" / "config", "m", {"m": {"server": "http://mine.test:1"}}, {"u": {"token": "x"}},
                  {"m": {"cluster": "m", "user": "u", "namespace": "team"}})
    monkeypatch.setenv("KUBECONFIG", str(mine))
    client, namespace = connect(Namespace(server=None, kubeconfig=None, context=None, token=None, namespace=None))
    try:
        assert (client.base_url, namespace) == ("http://mine.test:1", "team")
    finally:
        client.close()
