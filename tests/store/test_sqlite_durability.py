"""A write that SqliteStore acknowledged survives the process being killed with SIGKILL.

A child process writes in a loop and prints each write after the call returned; the parent
kills it at a random moment, reopens the file and checks every acknowledged write.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sigma.store.sqlite import SqliteStore

pytestmark = pytest.mark.e2e

# Each loop: create a new key, then bump a counter key. One line per acknowledged write.
CHILD = r"""
import sys
from sigma.store.sqlite import SqliteStore

store = SqliteStore(sys.argv[1])
round_ = sys.argv[2]
if store.get("/counter") is None:
    store.create("/counter", b"0")

def ack(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()

ack("ready")
i = 0
while True:
    key = f"/crash/{round_}/{i:06d}"
    store.create(key, key.encode() * 40)
    ack(f"C {key}")
    store.update("/counter", f"{round_}.{i}".encode())
    ack(f"U {round_}.{i}")
    i += 1
"""

ROUNDS = 5


def run_and_kill(db: Path, round_: int, rng: random.Random) -> list[list[str]]:
    """Run one child until a random number of acknowledgements, SIGKILL it, and return
    every acknowledgement it printed (including those still in the pipe)."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(round_)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stderr is not None
        ready = child.stdout.readline()
        assert ready == "ready\n", f"child did not start: {ready!r} {child.stderr.read()}"
        acks: list[list[str]] = []
        for _ in range(rng.randint(1, 600)):
            line = child.stdout.readline()
            assert line, f"child died early: {child.stderr.read()}"
            acks.append(line.split())
        time.sleep(rng.random() * 0.005)  # land the kill anywhere inside a write
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        # Lines already in the pipe were printed after their write returned: acknowledged.
        # A line cut short by the kill has no newline and does not count.
        rest = child.stdout.read()
        acks.extend(line.split() for line in rest.splitlines(keepends=True) if line.endswith("\n"))
        return acks
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def test_every_acknowledged_write_survives_sigkill(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    db = tmp_path / "state.db"
    acknowledged_keys: list[str] = []
    acknowledged_writes = 1  # the counter key's creation, acknowledged by "ready"
    for round_ in range(ROUNDS):
        acks = run_and_kill(db, round_, rng)
        acknowledged_writes += len(acks)
        acknowledged_keys += [ack[1] for ack in acks if ack[0] == "C"]
        counters = [ack[1] for ack in acks if ack[0] == "U"]

        store = SqliteStore(str(db))
        try:
            context = f"seed {seed}, round {round_}"
            for key in acknowledged_keys:
                kv = store.get(key)
                assert kv is not None, f"{key} lost ({context})"
                assert kv.value == key.encode() * 40, context
            assert store.current_revision() >= acknowledged_writes, context
            counter = store.get("/counter")
            assert counter is not None
            if counters:  # the counter may be one write ahead of its last acknowledgement
                assert _counter_step(counter.value) >= _counter_step(counters[-1].encode()), context
            replayed = {e.kv.key for e in store.watch("/crash/", 0).drain()}
            assert replayed >= set(acknowledged_keys), f"history lost ({context})"
        finally:
            store.close()
        with sqlite3.connect(db) as check:
            assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        check.close()


def _counter_step(value: bytes) -> tuple[int, int]:
    round_, step = value.decode().split(".")
    return int(round_), int(step)
