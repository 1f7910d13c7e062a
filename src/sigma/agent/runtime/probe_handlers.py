"""Which RuntimeClass handlers this node can run, probed once at the agent's start.

Each handler the agent can run gets a Node label ``sigma.io/runtime-handler.<handler>=true``
(the built-in RuntimeClasses select nodes on it) and the list goes in an annotation with the
reason of each one that is missing, so ``kubectl describe node`` says why a class cannot run
there. runc and process are the agent's own (root, runc); crun must run /bin/true;
runsc must run a command (``runsc do true``) with the platform it will use: systrap where
this runsc knows it (gVisor since 2023), else ptrace; lxc must run /bin/true with
lxc-execute over a read-only host root.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

from sigma.api.runtimeclass import handler_label

PROBE_TIMEOUT_S = 60.0  # a first `runsc do` on a loaded machine starts a whole sandbox
HANDLERS_ANNOTATION = "sigma.io/runtime-handlers"
MISSING_ANNOTATION = "sigma.io/runtime-handlers-missing"
RUNSC_ANNOTATION = "sigma.io/runsc"  # the platform and network mode gVisor's pods get here


@dataclass(frozen=True)
class Handlers:
    """What the probe found: the handlers that work (with runsc's platform) and why the
    others do not."""

    available: tuple[str, ...]
    missing: dict[str, str] = field(default_factory=dict)
    runsc_platform: str = "ptrace"
    # gVisor's own network stack in the pod's network namespace ("sandbox"), or, where this
    # runsc cannot (below), the pod's namespace through the host kernel's stack ("host").
    runsc_network: str = "sandbox"

    def labels(self) -> dict[str, str]:
        """"true" for each handler that works, "false" for the others: the agent patches its
        Node's labels and never removes one, so a handler lost since the last start must say so."""
        labels = {handler_label(h): "false" for h in self.missing}
        labels.update({handler_label(h): "true" for h in self.available})
        return labels

    def annotations(self) -> dict[str, str]:
        out = {HANDLERS_ANNOTATION: ",".join(self.available)}
        if "runsc" in self.available:
            out[RUNSC_ANNOTATION] = f"platform={self.runsc_platform},network={self.runsc_network}"
        if self.missing:
            out[MISSING_ANNOTATION] = "; ".join(f"{h}: {why}" for h, why in sorted(self.missing.items()))
        return out


def probe_handlers(root: bool, runc: bool, want: tuple[str, ...] = ("crun", "runsc", "lxc")) -> Handlers:
    """``root`` and ``runc``: what the agent's own probe found (image runtimes need both)."""
    available = ["process"]
    missing: dict[str, str] = {}
    if root and runc:
        available.append("runc")
    elif not root:
        missing["runc"] = "the agent does not run as root"
    else:
        missing["runc"] = "runc is not installed (apt package runc)"
    platform, network = "ptrace", "sandbox"
    for handler in want:
        if not root:
            missing[handler] = "the agent does not run as root"
            continue
        if handler == "crun":
            problem = _crun_runs()
        elif handler == "lxc":
            problem = _lxc_runs()
        else:
            problem, platform = _runsc_platform()
            network = "host" if problem or _runsc_network_problem(platform) else "sandbox"
        if problem:
            missing[handler] = problem
        else:
            available.append(handler)
    return Handlers(tuple(available), missing, platform, network)


def _answers(argv: list[str]) -> str:
    """"" if the command ran and exited 0, else why not."""
    if shutil.which(argv[0]) is None:
        return f"{argv[0]} is not installed (apt package {argv[0]})"
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=PROBE_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"{' '.join(argv)}: {err}"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()[-1:] or [""]
        return f"{os.path.basename(argv[0])} exited {done.returncode}: {tail[0][:200]}"
    return ""


def _crun_runs() -> str:
    """"" if crun runs /bin/true over a read-only host root (crun 1.8 refuses hybrid cgroup
    hierarchies where cgroup2 holds a controller, whatever the bundle asks: only a real run tells)."""
    if shutil.which("crun") is None:
        return "crun is not installed (apt package crun)"
    with tempfile.TemporaryDirectory(prefix="sigma-crun-probe-") as work:
        config = {"ociVersion": "1.0.2", "root": {"path": "/", "readonly": True},
                  "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                              "env": ["PATH=/usr/bin:/bin"]},
                  "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
                  "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}}
        with open(os.path.join(work, "config.json"), "w") as f:
            json.dump(config, f)
        return _answers(["crun", "--root", os.path.join(work, "root"), "run", "--bundle", work,
                         f"sigma-probe-{os.getpid()}"])


def _lxc_runs() -> str:
    """"" if lxc-execute runs /bin/true in a container over the host's root, read-only."""
    if shutil.which("lxc-execute") is None:
        return "lxc-execute is not installed (apt package lxc)"
    with tempfile.TemporaryDirectory(prefix="sigma-lxc-probe-") as work:
        conf = os.path.join(work, "probe.conf")
        with open(conf, "w") as f:
            f.write("lxc.rootfs.path = dir:/\nlxc.rootfs.options = ro\nlxc.net.0.type = none\n"
                    "lxc.mount.auto = proc:mixed\nlxc.autodev = 1\nlxc.console.path = none\nlxc.tty.max = 0\n")
        return _answers(["lxc-execute", "-P", work, "-n", f"sigma-probe-{os.getpid()}", "-f", conf, "--",
                         "/bin/true"])


def _runsc_platform() -> tuple[str, str]:
    """("", platform) if runsc runs a command on systrap or else ptrace; (why not, "ptrace")."""
    if shutil.which("runsc") is None:
        return "runsc is not installed (apt package runsc)", "ptrace"
    problem = ""
    for platform in ("systrap", "ptrace"):
        with tempfile.TemporaryDirectory(prefix="sigma-runsc-probe-") as state:
            problem = _answers(["runsc", "--root", os.path.join(state, "root"), f"--platform={platform}",
                                "--network=none", "do", "true"])
        if not problem:
            return "", platform
    return problem, "ptrace"


def _runsc_network_problem(platform: str) -> str:
    """"" if runsc starts a container with its own network stack in a network namespace that
    is not the host's. runsc before 2023 takes every namespace where
    /proc/sys/net/core/rmem_default exists for the host's, and refuses ("cannot run with
    network enabled in root network namespace"); since Linux 6.x every namespace has it."""
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    with tempfile.TemporaryDirectory(prefix="sigma-runsc-net-probe-") as work:
        config = {"ociVersion": "1.0.2", "root": {"path": "/", "readonly": True},
                  "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                              "env": ["PATH=/usr/bin:/bin"]},
                  "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}}
        with open(os.path.join(work, "config.json"), "w") as f:
            json.dump(config, f)
        root = os.path.join(work, "root")
        name = f"sigma-net-probe-{os.getpid()}"
        problem = _answers(["unshare", "--net", "runsc", "--root", root, f"--platform={platform}",
                            "--network=sandbox", "--ignore-cgroups", "run", "--bundle", work, name])
        _answers(["runsc", "--root", root, "delete", "--force", name])
    return problem
