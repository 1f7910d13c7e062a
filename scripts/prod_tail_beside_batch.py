"""Prod's tail latency on this machine, with and without a CPU burst, alone and beside batch.

    sudo .venv/bin/python scripts/prod_tail_beside_batch.py [--replicas 5] [--requests 700]

No cluster: K replicas of the festival's service (sigma.bench.festival_backend: 10 ms of CPU
a request, one thread) each in a prod cgroup of the agent's tree (sigma.agent.cgroups) with a
300m limit, each sent Poisson requests at 8/s by its own open-loop generator
(sigma.bench.festival_load) over loopback. Four runs: no burst / burst = quota, each alone
and beside one busy loop per CPU in the tree's batch parent (cpu.idle=1, as the agent runs
batch). One JSON line per run, then a summary line. This is the measurement behind the
NodeSLO's cpuBurstStrategy (sigma.colocation.cpuburst) and behind what docs/benchmarks.md
says of prod's p99 beside batch. Needs root (cgroups); removes its cgroups when done.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sigma.agent.cgroups import CgroupTree
from sigma.agent.podspec import Resources
from sigma.bench.procs import sigterm_as_interrupt

BACKEND = Path(__file__).resolve().parent.parent / "src/sigma/bench/festival_backend.py"
BURNER = "import hashlib\nh = b'batch'\nwhile True:\n    h = hashlib.sha256(h).digest()\n"
# Joins the cgroup (the files are the arguments), then runs the program file as __main__.
JOIN = ("import os, runpy, sys\n"
        "procs, program, args = sys.argv[1].split(','), sys.argv[2], sys.argv[3:]\n"
        "for f in procs:\n"
        "    open(f, 'w').write(str(os.getpid()))\n"
        "sys.argv = [program, *args]\n"
        "runpy.run_path(program, run_name='__main__')\n")


def in_cgroup(tree: CgroupTree, rel: str, program: Path, *args: str) -> subprocess.Popen[bytes]:
    """A python process that joins `rel` before running `program`."""
    return subprocess.Popen([sys.executable, "-c", JOIN, ",".join(tree.procs_files(rel)), str(program), *args])


def run(tree: CgroupTree, workdir: Path, replicas: int, requests: int, burst: bool, batch: bool,
        port: int) -> dict[str, Any]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if batch:
            rel = tree.ensure_pod("batch", "burners", Resources())
            burner = workdir / "burner.py"
            burner.write_text(BURNER)
            procs += [in_cgroup(tree, rel, burner) for _ in range(os.cpu_count() or 1)]
        for i in range(replicas):
            rel = tree.ensure_pod("prod", f"web{i}", Resources(100, 300))
            quota = tree.cfs_quota_us(rel) or 0
            tree.set_cpu_burst_us(rel, quota if burst else 0)
            backend = workdir / f"web{i}.py"
            backend.write_text(BACKEND.read_text().replace("8080", str(port + i)))
            procs.append(in_cgroup(tree, rel, backend, "10"))
        time.sleep(2.0)  # the replicas listen
        loads = []
        for i in range(replicas):
            rng, t, due = random.Random(11 + i), 0.0, []
            for _ in range(requests):
                t += rng.expovariate(8.0)
                due.append(round(t, 4))
            plan = {"host": "127.0.0.1", "port": port + i, "due": due, "connections": 256, "timeout_s": 5}
            loads.append(subprocess.Popen([sys.executable, "-m", "sigma.bench.festival_load", json.dumps(plan)],
                                          stdout=subprocess.PIPE))
        ms: list[float] = []
        for load in loads:
            out, _ = load.communicate()
            ms += [float(x[1]) for x in json.loads(out)["requests"] if x[1] is not None]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    ms.sort()

    def q(f: float) -> float:
        return round(ms[min(len(ms) - 1, int(f * len(ms)))], 2)

    return {"burst": burst, "batch": batch, "replicas": replicas, "requests": len(ms),
            "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99), "p999_ms": q(0.999)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replicas", type=int, default=5)
    p.add_argument("--requests", type=int, default=700, help="per replica (at 8/s: 700 is about 90 s a run)")
    args = p.parse_args()
    tree = CgroupTree(root=f"sigma-tail-{uuid.uuid4().hex[:8]}")
    if not tree.available:
        sys.exit("needs writable cgroups (root)")
    tree.setup()
    results = []
    try:
        with sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="sigma-tail-") as workdir:
            os.chmod(workdir, 0o755)
            for i, (burst, batch) in enumerate([(False, False), (False, True), (True, False), (True, True)]):
                results.append(run(tree, Path(workdir), args.replicas, args.requests, burst, batch, 18400 + 10 * i))
                print(json.dumps(results[-1]), flush=True)
    finally:
        tree.remove_all()
    by = {(r["burst"], r["batch"]): float(r["p99_ms"]) for r in results}
    print(json.dumps({"p99_beside_batch_over_alone": {"no_burst": round(by[False, True] / by[False, False], 3),
                                                      "burst": round(by[True, True] / by[True, False], 3)}}))


if __name__ == "__main__":
    main()
