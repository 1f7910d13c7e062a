"""The load side of `sigma bench service`, run in the client pod's network namespace:
``python -m sigma.bench.service_load PLAN`` (PLAN: JSON).

PLAN = {"windows": [[label, host, port], ...], "rate": r, "seconds": s, "connections": c};
a window's host may be a list: its requests take turns over those addresses.
The windows run one after the other, each an open-loop run of sigma.bench.loadgen at r
requests per second for s seconds, one fresh connection per request. After each window one
JSON line goes to stdout: {"label", "latencies_ms", "errors", "answers", "seconds"}.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from sigma.bench.loadgen import run_load


def window(label: str, host: str | list[str], port: int, rate: float, seconds: float,
           connections: int) -> dict[str, Any]:
    hosts = [host] if isinstance(host, str) else host
    try:
        result = run_load(hosts[0], port, rate, seconds, connections, fresh_connections=True, rotate=tuple(hosts[1:]))
    except OSError as e:  # the very first connect failed: the whole window is errors
        return {"label": label, "latencies_ms": [], "errors": int(rate * seconds), "answers": {},
                "seconds": seconds, "failure": str(e)}
    return {"label": label, "latencies_ms": [round(x, 3) for x in result.latencies_ms], "errors": result.errors,
            "answers": result.answers, "seconds": round(result.seconds, 3)}


def main(argv: list[str]) -> None:
    plan = json.loads(argv[0])
    for label, host, port in plan["windows"]:
        print(json.dumps(window(label, host, int(port), float(plan["rate"]), float(plan["seconds"]),
                                int(plan.get("connections", 64)))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
