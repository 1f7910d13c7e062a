"""A real `sigma agent` subprocess beside a MasterProcess: the process runtime, a private
cgroup subtree (so that it never touches another agent's pods) and its state in a work
directory. Used by the soak benchmark and, through tests, by end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from sigma.agent.cgroups import CgroupTree

__all__ = ["AgentProcess", "release_mounts_under", "remove_cgroup_subtree"]


class AgentProcess:
    def __init__(self, workdir: Path, master_url: str, node: str, *, cpus: str = "2", memory: str = "4Gi") -> None:
        self.workdir = workdir
        self.master_url = master_url
        self.node = node
        self.cpus, self.memory = cpus, memory
        self.cgroup_root = f"sigma-test-{uuid.uuid4().hex[:8]}"
        self.log = workdir / f"agent-{node}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> AgentProcess:
        return self.start()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.stop()
        left = release_mounts_under(self.workdir / f"agent-{self.node}")
        if left and exc_type is None:  # the drain must unmount every rootfs; say which it did not
            raise RuntimeError(f"agent {self.node} left {len(left)} mounts after its drain: {', '.join(left)}")

    def start(self) -> AgentProcess:
        cmd = [sys.executable, "-m", "sigma", "agent", "--master", self.master_url, "--node-name", self.node,
               "--cpus", self.cpus, "--memory", self.memory, "--state-dir", str(self.workdir / f"agent-{self.node}"),
               "--image-dir", str(self.workdir / "images"), "--listen", "127.0.0.1:0", "--address", "127.0.0.1",
               "--cgroup-root", self.cgroup_root, "--no-p2p", "--drain-on-exit"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # --drain-on-exit stops every pod and removes its cgroups
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        remove_cgroup_subtree(self.cgroup_root)


def remove_cgroup_subtree(root: str) -> None:
    """Whatever an agent on ``root`` left behind (it should leave nothing after a drain)."""
    base = Path("/sys/fs/cgroup")
    if not base.is_dir():
        return
    hierarchies = [base] if (base / "cgroup.controllers").exists() else [p for p in base.iterdir() if p.is_dir()]
    for hierarchy in hierarchies:
        for top in CgroupTree(root=root).own_roots:
            leftover = hierarchy / top
            if not leftover.is_dir():
                continue
            for d in sorted((p for p in leftover.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                d.rmdir()
            leftover.rmdir()


def release_mounts_under(path: Path) -> list[str]:
    """Unmount whatever is still mounted below ``path`` (deepest first), so that the work
    directory can be removed; returns the mount points found."""
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    left = sorted({p for p in points if p.startswith(prefix)}, key=len, reverse=True)
    for point in left:
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    return left
