"""How long `sigma` takes to start: a few commands that do no I/O, each run several times in a
fresh interpreter. Prints one JSON line: per command the median and best wall time, the
median CPU time (user + sys, which a busy machine inflates far less than wall time), and
the heavy modules the command imported (from `python -X importtime`).

Run: PYTHONPATH=src .venv/bin/python scripts/cli_start_time.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "sigma --version": ["--version"],
    "sigma --help": ["--help"],
    "sigma get pods --help": ["get", "pods", "--help"],
}
HEAVY = ("numpy", "scipy", "pyarrow", "matplotlib", "statsmodels", "sigma.sim", "sigma.bench")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_once(args: list[str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one `python -m sigma ARGS`."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-m", "sigma", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return time.perf_counter() - t0, _children_cpu() - cpu0


def heavy_imports(args: list[str]) -> list[str]:
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "sigma", *args], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, check=True)
    # importtime lines: "import time: self [us] | cumulative | <indent>module"
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    return [m for m in HEAVY if m in imported]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args()
    result: dict[str, object] = {"runs": args.runs, "python": sys.version.split()[0], "cores": os.cpu_count()}
    for name, argv in COMMANDS.items():
        time_once(argv)  # warm the file cache and bytecode
        samples = [time_once(argv) for _ in range(args.runs)]
        walls, cpus = [w for w, _ in samples], [c for _, c in samples]
        result[name] = {"wall_median_s": round(statistics.median(walls), 3), "wall_best_s": round(min(walls), 3),
                        "cpu_median_s": round(statistics.median(cpus), 3), "heavy_imports": heavy_imports(argv)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
