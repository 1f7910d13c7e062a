"""A /readyz prober in a process of its own, used by the benchmarks that load a master.

In the benchmark's own process the prober would share the interpreter lock with the load's
client threads (each parsing watch streams and list answers): a probe would then time the
client's stalls as the master's. In its own process it times only the master.

``python -m sigma.bench.readyz_probe URL EVERY_S`` asks URL/readyz every EVERY_S seconds
until its stdin closes (it prints "probing" when it starts), then prints one JSON line:
``{"latencies": [...], "failures": N}``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import httpx

__all__ = ["ReadyzProbe"]


class ReadyzProbe:
    """``with ReadyzProbe(url, every_s) as probe: ...``; afterwards ``probe.latencies`` (s)
    and ``probe.failures`` (answers other than 200, and transport errors)."""

    def __init__(self, url: str, every_s: float) -> None:
        self.url, self.every_s = url, every_s
        self.latencies: list[float] = []
        self.failures = 0
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> ReadyzProbe:
        command = [sys.executable, "-m", "sigma.bench.readyz_probe", self.url, str(self.every_s)]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "probing":  # probing before the load starts
            self.stop()
            raise RuntimeError("the /readyz prober did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            out, _ = process.communicate("", timeout=60)  # closing stdin ends the probe
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise RuntimeError("the /readyz prober did not stop within 60 s") from None
        if process.returncode != 0 or not out.strip():
            raise RuntimeError(f"the /readyz prober exited with {process.returncode}")
        result = json.loads(out.strip().splitlines()[-1])
        self.latencies, self.failures = [float(x) for x in result["latencies"]], int(result["failures"])


def probe(url: str, every_s: float, stop: threading.Event) -> tuple[list[float], int]:
    latencies: list[float] = []
    failures = 0
    with httpx.Client(base_url=url, timeout=30, verify=False) as http:
        print("probing", flush=True)
        while not stop.wait(every_s):
            started = time.perf_counter()
            try:
                ok = http.get("/readyz").status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - started)
            failures += 0 if ok else 1
    return latencies, failures


def main(argv: list[str]) -> int:
    url, every_s = argv[0], float(argv[1])
    stop = threading.Event()

    def wait_for_stdin_close() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_stdin_close, daemon=True).start()
    latencies, failures = probe(url, every_s, stop)
    print(json.dumps({"latencies": [round(x, 6) for x in latencies], "failures": failures}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
