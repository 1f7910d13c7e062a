"""kill -9 of the master at any moment loses no write it acknowledged."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.harness import MasterProcess

pytestmark = pytest.mark.e2e


def writer(url: str, prefix: str, acked: list[str], stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=5) as http:
        n = 0
        while not stop.is_set():
            name = f"{prefix}-{n}"
            body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                    "spec": {"containers": [{"name": "c", "command": ["true"]}]}}
            try:
                r = http.post("/api/v1/namespaces/default/pods", json=body)
            except httpx.TransportError:
                return  # the master died mid-request: this write was never acknowledged
            if r.status_code == 201:
                acked.append(name)
            n += 1


def test_acknowledged_writes_survive_kill9_of_the_master(tmp_path: Path) -> None:
    rng = random.Random(7)
    master = MasterProcess(tmp_path)
    acked: list[str] = []
    try:
        for round_no in range(3):
            master.start()
            stop = threading.Event()
            threads = [threading.Thread(target=writer, args=(master.url, f"r{round_no}w{i}", acked, stop))
                       for i in range(3)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.3, 1.2))
            master.kill9()
            stop.set()
            for t in threads:
                t.join(timeout=10)
        master.start()
        with httpx.Client(base_url=master.url, timeout=10) as http:
            items = http.get("/api/v1/namespaces/default/pods").json()["items"]
        stored = {p["metadata"]["name"] for p in items}
        assert acked, "no write was acknowledged before the kills"
        missing = [name for name in acked if name not in stored]
        assert missing == [], f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    finally:
        master.stop()
