"""kubectl against a real master, and waiting for what it shows: shared by the e2e tests that
drive a cluster the way a user does."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

from tests.harness import MasterProcess


class KubectlCluster:
    def __init__(self, master: MasterProcess) -> None:
        self.master = master

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["kubectl", "--server", self.master.url, *args], capture_output=True, text=True,
                                input=input, timeout=120)
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stderr}"
        return result

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0, interval: float = 0.3) -> Any:
    """``probe()``'s first truthy value, polled every ``interval`` seconds up to ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
