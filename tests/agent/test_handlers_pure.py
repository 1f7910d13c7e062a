"""The pure parts of the RuntimeClass handlers: what the probe publishes, runsc's flags and
the config.json runsc is given (no process started)."""

from __future__ import annotations

from typing import Any

import pytest

from sigma.agent.runtime.base import ContainerSpec
from sigma.agent.runtime.handlers import gvisor_config, host_view_config, runsc_flags
from sigma.agent.runtime.lxc import kept_capabilities, lxc_config
from sigma.agent.runtime.probe_handlers import Handlers
from sigma.agent.runtime.shimmed import StartFailure


def test_labels_say_true_for_what_works_and_false_for_what_is_missing() -> None:
    found = Handlers(("process", "runc", "runsc"), {"crun": "crun exited 1: hybrid", "lxc": "not yet"},
                     runsc_platform="ptrace", runsc_network="host")
    assert found.labels() == {"sigma.io/runtime-handler.process": "true", "sigma.io/runtime-handler.runc": "true",
                              "sigma.io/runtime-handler.runsc": "true", "sigma.io/runtime-handler.crun": "false",
                              "sigma.io/runtime-handler.lxc": "false"}
    notes = found.annotations()
    assert notes["sigma.io/runtime-handlers"] == "process,runc,runsc"
    assert notes["sigma.io/runtime-handlers-missing"] == "crun: crun exited 1: hybrid; lxc: not yet"
    assert notes["sigma.io/runsc"] == "platform=ptrace,network=host"


def test_runsc_flags_choose_network_and_cgroups() -> None:
    assert runsc_flags("/usr/bin/runsc", "/s/runsc-root", "systrap", "sandbox", cgroups=True) == [
        "/usr/bin/runsc", "--root", "/s/runsc-root", "--platform=systrap", "--network=sandbox"]
    assert runsc_flags("runsc", "/r", "ptrace", "host", cgroups=False)[-2:] == ["--network=host", "--ignore-cgroups"]


def config() -> dict[str, Any]:
    return {"root": {"path": "/run/sigma/sandbox-rootfs", "readonly": False},
            "mounts": [{"destination": "/", "type": "bind", "source": "/", "options": ["rbind", "rro"]},
                       {"destination": "/root", "type": "tmpfs", "source": "tmpfs",
                        "options": ["ro", "nosuid", "size=4k", "mode=755"]}],
            "linux": {"namespaces": [{"type": "pid"}, {"type": "user"}],
                      "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                      "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}}


def test_gvisor_config_drops_the_user_namespace() -> None:
    linux = gvisor_config(config())["linux"]
    assert linux["namespaces"] == [{"type": "pid"}]
    assert "uidMappings" not in linux and "gidMappings" not in linux


def test_host_view_is_a_read_only_root_with_its_masks() -> None:
    view = host_view_config(config())
    assert view["root"] == {"path": "/", "readonly": True}
    assert [m["destination"] for m in view["mounts"]] == ["/root"]  # no writable placeholder under /
    assert view["mounts"][0]["options"] == ["ro", "nosuid", "mode=755"]


def test_lxc_config_names_rootfs_network_user_and_env() -> None:
    spec = ContainerSpec("uid1", "default", "web", "main", 0, ["sh"], env={"A": "1"}, run_as_user=1000,
                         netns_path="/run/netns/pod", etc_files=(("/etc/hosts", "/run/sigma/etc/hosts"),))
    text = lxc_config(spec, "/state/rootfs", {"PATH": "/bin", "A": "1"}, "/")
    lines = text.splitlines()
    assert "lxc.rootfs.path = dir:/state/rootfs" in lines
    assert "lxc.namespace.share.net = /run/netns/pod" in lines and "lxc.net.0.type = none" not in lines
    assert {"lxc.init.uid = 1000", "lxc.init.gid = 1000", "lxc.environment = A=1"} <= set(lines)
    assert "lxc.mount.entry = /run/sigma/etc/hosts etc/hosts none bind,ro,create=file 0 0" in lines
    host_net = lxc_config(ContainerSpec("u", "d", "p", "c", 0, ["sh"]), "/r", {}, "/")
    assert "lxc.net.0.type = none" in host_net.splitlines()


def test_lxc_refuses_a_setting_with_a_newline() -> None:
    with pytest.raises(StartFailure, match="one setting a line"):
        lxc_config(ContainerSpec("u", "d", "p", "c", 0, ["sh"]), "/r", {"X": "a\nlxc.cap.drop ="}, "/")


def test_lxc_keeps_runcs_default_capabilities_with_the_pods_changes() -> None:
    plain = kept_capabilities(ContainerSpec("u", "d", "p", "c", 0, ["sh"]))
    assert "chown" in plain and "sys_admin" not in plain and len(plain) == 14
    changed = kept_capabilities(ContainerSpec("u", "d", "p", "c", 0, ["sh"], capabilities_add=("NET_ADMIN",),
                                              capabilities_drop=("chown",)))
    assert "net_admin" in changed and "chown" not in changed
    assert kept_capabilities(ContainerSpec("u", "d", "p", "c", 0, ["sh"], capabilities_drop=("ALL",))) == []
