"""A real `sigma master` on SQLite whose state directory fills up or turns read-only.

The state directory (the SQLite file, and by default the CA and the audit log next to it)
is a file system the test mounts for itself and unmounts afterwards, also on failure:

- full: a 16 MiB tmpfs, filled to the last byte by a filler file while pods are being
  created. Creates must then fail with 507 InsufficientStorage naming the full disk, reads
  keep working, the master stays up; once the filler is deleted writes work again.
- read-only: an ext4 image on a loop device mounted ``errors=remount-ro``, then an ext4
  error triggered through sysfs, so the kernel remounts it read-only under the running
  master, as it does after a real disk error. (``mount -o remount,ro`` cannot be used: it
  fails with EBUSY while the master holds the database open for writing.) Creates must fail
  with 503 naming the read-only file system, reads keep working.

In both cases every acknowledged pod is there afterwards, no refused pod half-exists, and
the database passes ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.harness import MasterProcess

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="mounting a file system needs root")]

PODS = "/api/v1/namespaces/default/pods"
POD_KEY = "/registry/core/pods/default/"


def pod(name: str) -> dict[str, object]:
    # A sizeable annotation makes each write take a few KiB, so the disk fills in seconds.
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": {"padding": "x" * 2000}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def _unmount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)  # still busy: detach it


@pytest.fixture
def tmpfs_state(tmp_path: Path) -> Iterator[Path]:
    state = tmp_path / "state"
    state.mkdir()
    try:
        _run("mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(state))
    except subprocess.CalledProcessError as err:
        pytest.skip(f"cannot mount a tmpfs here: {err.stderr.decode().strip()}")
    try:
        yield state
    finally:
        _unmount(state)


@dataclass
class Ext4:
    image: Path
    mountpoint: Path

    def mount(self) -> None:
        _run("mount", "-o", "loop,errors=remount-ro", str(self.image), str(self.mountpoint))

    def device(self) -> str:
        """The loop device's name (loop3), as /sys/fs/ext4 names the mounted file system."""
        source = subprocess.run(["findmnt", "-n", "-o", "SOURCE", str(self.mountpoint)],
                                check=True, capture_output=True, text=True).stdout.strip()
        return Path(source).name

    def fail(self) -> None:
        """What a disk error does: ext4 aborts its journal and remounts itself read-only."""
        Path(f"/sys/fs/ext4/{self.device()}/trigger_fs_error").write_text("sigma state-dir fault test\n")

    def repair(self) -> None:
        """Unmount, fsck (which replays what the aborted journal holds) and mount again."""
        _unmount(self.mountpoint)
        fsck = subprocess.run(["e2fsck", "-fy", str(self.image)], capture_output=True, text=True)
        assert fsck.returncode in (0, 1), f"e2fsck could not repair the image:\n{fsck.stdout}{fsck.stderr}"
        self.mount()


@pytest.fixture
def ext4_state(tmp_path: Path) -> Iterator[Ext4]:
    if not Path("/sys/fs/ext4").is_dir():
        pytest.skip("no ext4 in this kernel")
    fs = Ext4(tmp_path / "state.img", tmp_path / "state")
    fs.mountpoint.mkdir()
    with open(fs.image, "wb") as image:
        image.truncate(64 << 20)
    try:
        _run("mkfs.ext4", "-q", "-F", "-m", "0", str(fs.image))
        fs.mount()
    except (subprocess.CalledProcessError, FileNotFoundError) as err:
        pytest.skip(f"cannot mount an ext4 image here: {err}")
    try:
        yield fs
    finally:
        _unmount(fs.mountpoint)


@dataclass
class Load:
    """Writers creating pods with fixed names; what the master answered to each."""

    url: str
    prefix: str
    acked: list[str] = field(default_factory=list)
    refused: dict[str, httpx.Response] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)  # transport errors: the master dropped a request
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, writers: int = 2) -> Load:
        self.threads = [threading.Thread(target=self._write, args=(i,), daemon=True) for i in range(writers)]
        for thread in self.threads:
            thread.start()
        return self

    def _write(self, index: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            n = 0
            while not self.stop.is_set():
                name = f"{self.prefix}-{index}-{n}"
                n += 1
                try:
                    r = http.post(PODS, json=pod(name))
                except httpx.TransportError as err:
                    self.broken.append(f"{name}: {err!r}")
                    time.sleep(0.05)
                    continue
                if r.status_code == 201:
                    self.acked.append(name)
                else:
                    self.refused[name] = r
                    time.sleep(0.05)  # a refused write comes back at once: do not spin

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)

    def wait_refused(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.refused) < count and time.monotonic() < deadline and not self.broken:
            time.sleep(0.05)
        assert not self.broken, f"requests dropped instead of answered: {self.broken[:3]}"
        assert len(self.refused) >= count, f"still accepting writes after {timeout}s ({len(self.acked)} acked)"


def stored_pods(url: str) -> set[str]:
    r = httpx.get(f"{url}{PODS}", timeout=30)
    assert r.status_code == 200, r.text
    return {item["metadata"]["name"] for item in r.json()["items"]}


def assert_refusals(load: Load, code: int, reason: str, cause: str) -> None:
    for name, r in load.refused.items():
        status = r.json()
        assert r.status_code == code, f"{name}: {r.status_code} {r.text[:300]}"
        assert status["kind"] == "Status" and status["reason"] == reason, status
        assert cause in status["message"], status["message"]
        assert r.headers.get("Retry-After"), "a storage fault is temporary: the client is told to retry"


def integrity(db: Path) -> tuple[str, set[str]]:
    """PRAGMA integrity_check and the pod names, read with a fresh connection."""
    conn = sqlite3.connect(db)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        rows = conn.execute("SELECT key FROM kv WHERE key >= ? AND key < ?", (POD_KEY, POD_KEY + "\xff"))
        return check, {key.removeprefix(POD_KEY) for (key,) in rows}
    finally:
        conn.close()


def fill(directory: Path) -> Path:
    """Write a filler file until the file system has not one byte left."""
    filler = directory / "filler"
    chunk = b"\0" * (64 << 10)
    with open(filler, "wb", buffering=0) as out:
        with suppress(OSError):
            while True:
                out.write(chunk)
        with suppress(OSError):
            while True:
                out.write(b"\0" * 512)
    return filler


def master_under_load(db: Path, tmp_path: Path) -> tuple[MasterProcess, Load]:
    """A master on the SQLite file `db`, with creates already flowing for a second."""
    (tmp_path / "run").mkdir()
    master = MasterProcess(tmp_path / "run", store=f"sqlite://{db}")
    master.start()
    try:
        load = Load(master.url, "before").start()
    except BaseException:
        master.stop()
        raise
    time.sleep(1.0)
    return master, load


def assert_alive_with_every_acknowledged_pod(master: MasterProcess, load: Load) -> None:
    """The master still runs and serves reads: every acknowledged pod, no refused one."""
    assert master.process is not None and master.process.poll() is None
    assert httpx.get(f"{master.url}/healthz").status_code == 200
    stored = stored_pods(master.url)
    assert set(load.acked) <= stored
    assert not stored & set(load.refused), "a refused create was half-written"


def test_a_full_state_directory_refuses_writes_with_507_and_recovers(tmpfs_state: Path, tmp_path: Path) -> None:
    db = tmpfs_state / "state.db"
    master, load = master_under_load(db, tmp_path)
    try:
        filler = fill(tmpfs_state)
        load.wait_refused(20, timeout=60)
        load.finish()
        assert load.acked, "nothing was acknowledged before the disk filled up"
        assert_refusals(load, 507, "InsufficientStorage", "full")

        # Reads work and the master is alive; everything acknowledged is there, nothing refused.
        assert_alive_with_every_acknowledged_pod(master, load)

        # Space comes back: the next write simply works, without a restart.
        # The database grows into most of the 16 MiB before the disk fills up, so the filler
        # alone can free too little for the next writes: the disk grows as well.
        filler.unlink()
        _run("mount", "-o", "remount,size=64m", str(tmpfs_state))
        again = Load(master.url, "after").start()
        deadline = time.monotonic() + 10
        while len(again.acked) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        again.finish()
        assert len(again.acked) >= 20 and not again.refused, {n: r.text for n, r in again.refused.items()}
        assert set(load.acked + again.acked) <= stored_pods(master.url)
    finally:
        master.stop()
    check, names = integrity(db)
    assert check == "ok"
    assert set(load.acked + again.acked) <= names and not names & set(load.refused)


def test_a_read_only_state_directory_refuses_writes_with_503_and_corrupts_nothing(
        ext4_state: Ext4, tmp_path: Path) -> None:
    db = ext4_state.mountpoint / "state.db"
    master, load = master_under_load(db, tmp_path)
    try:
        # With synchronous=NORMAL a commit is durable against a crash of the master, not of
        # the file system: what ext4 had not written back when its journal aborts is gone
        # after the repair. Acknowledged up to this sync, then, must survive the repair;
        # everything acknowledged must be served while the master runs.
        durable = list(load.acked)
        os.sync()
        ext4_state.fail()
        load.wait_refused(20, timeout=30)
        load.finish()
        assert durable, "nothing was acknowledged before the file system turned read-only"
        assert_refusals(load, 503, "ServiceUnavailable", "read-only")

        assert_alive_with_every_acknowledged_pod(master, load)
    finally:
        master.stop()

    ext4_state.repair()
    check, names = integrity(db)
    assert check == "ok"
    assert set(durable) <= names and not names & set(load.refused)

    # The repaired state directory serves a new master, which takes writes again.
    master.start()
    try:
        assert set(durable) <= stored_pods(master.url)
        r = httpx.post(f"{master.url}{PODS}", json=pod("after-repair"), timeout=10)
        assert r.status_code == 201, r.text
    finally:
        master.stop()
