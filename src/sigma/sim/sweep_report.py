"""Writing a sweep: sweep.json (a row per simulation, the frontier) and frontier.png.

sweep.json holds no wall-clock figure, so a serial run and a distributed one of the same
sweep write the same file; how long it took is printed, not stored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sigma.sim.report import _clean, _save


def document(inputs: dict[str, Any], rows: list[dict[str, Any]], frontier: dict[str, list[dict[str, Any]]],
             unlimited: list[dict[str, Any]]) -> dict[str, Any]:
    return {"inputs": inputs, "objectives": ["machines", "prod_violation", "batch_slowdown"],
            "unlimited": unlimited, "rows": rows, "frontier": frontier}


def write(out: Path, doc: dict[str, Any], plot: bool) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "sweep.json"
    path.write_text(json.dumps(_clean(doc), indent=2, sort_keys=True) + "\n")
    written = [path]
    if plot:
        written.append(plot_frontier(out / "frontier.png", doc["rows"], doc["frontier"]))
    return written


def plot_frontier(path: Path, rows: list[dict[str, Any]], frontier: dict[str, list[dict[str, Any]]]) -> Path:
    """Two panels sharing the machines axis: prod violation, batch slowdown. Every setting is
    a faint dot; the frontier's settings are joined and labelled with their thresholds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (violation, slowdown) = plt.subplots(1, 2, figsize=(11, 4.5), sharex=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    for k, policy in enumerate(policies):
        colour = colours[k % len(colours)]
        mine = [r for r in rows if r["policy"] == policy]
        for ax, key in ((violation, "prod_violation"), (slowdown, "batch_slowdown")):
            shown = [r for r in mine if r.get(key) is not None]
            ax.scatter([r["machines"] for r in shown], [r[key] for r in shown], s=12, alpha=0.3, color=colour)
            front = sorted(frontier.get(policy, []), key=lambda f: (f["machines"], f[key]))
            ax.plot([f["machines"] for f in front], [f[key] for f in front], marker="o", color=colour,
                    label=f"{policy} frontier")
            labels: dict[tuple[int, float], list[str]] = {}  # settings that land on one point share a label
            for f in front:
                name = f"{f['cpu_threshold']:g}/{f['memory_threshold']:g}"
                labels.setdefault((f["machines"], f[key]), []).append(name)
            for xy, names in labels.items():
                ax.annotate(", ".join(names), xy, fontsize=7, textcoords="offset points", xytext=(3, 3 + 9 * k))
    violation.set(xlabel="machines", ylabel="prod violation (share of prod CPU demand unserved)",
                  title="Machines against prod violation")
    slowdown.set(xlabel="machines", ylabel="batch p90 JCT / unlimited cluster's",
                 title="Machines against batch slowdown")
    violation.legend(fontsize=8)
    slowdown.legend(fontsize=8)
    fig.suptitle("Level-0 threshold sweep (labels: cpu/memory thresholds)")
    return _save(fig, path)
