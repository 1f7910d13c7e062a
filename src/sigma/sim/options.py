"""`sigma sim` options for Level-0 and the prediction, kept beside the code they configure.

The thresholds are the NodeSLO's cpuThreshold/memoryThreshold, read by the live system's own
`node_slo`, so the simulator and a cluster given the same NodeSLO compute the same batch
allocatable. Unlike `node_slo` (tolerant: a bad field takes its default so Level-0 keeps
running), the command line refuses a bad value: an experiment must not silently run with
a threshold other than the one asked for.
"""

from __future__ import annotations

import argparse

from sigma.colocation.level0 import DEFAULT_THRESHOLDS, Thresholds
from sigma.colocation.slo import node_slo
from sigma.sim.forecast import PredictSettings

_PREDICT = PredictSettings()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cpu-threshold", type=float, default=DEFAULT_THRESHOLDS.cpu,
                   help="Level-0/suppress: prod + batch cpu <= this x capacity (NodeSLO cpuThreshold)")
    p.add_argument("--memory-threshold", type=float, default=DEFAULT_THRESHOLDS.memory,
                   help="Level-0: prod + batch memory <= this x capacity (NodeSLO memoryThreshold)")
    p.add_argument("--predict-lead", type=float, default=_PREDICT.lead_s / 60, metavar="MINUTES",
                   help="sigma-predictive: reserve the predicted prod peak this far ahead")
    p.add_argument("--predict-quantile", type=float, default=_PREDICT.quantile,
                   help="sigma-predictive: forecast quantile reserved (0-1)")
    p.add_argument("--predict-refit", type=float, default=_PREDICT.refit_s / 3600, metavar="HOURS",
                   help="sigma-predictive: refit the forecaster every this many virtual hours")
    p.add_argument("--predict-history", type=float, metavar="DAYS",
                   help="sigma-predictive: prod history each fit sees (default: 7 days, or less so that "
                        "no fit sees a loop of the prod curve back to the values it predicts)")


def thresholds(args: argparse.Namespace) -> Thresholds:
    for name in ("cpu_threshold", "memory_threshold"):
        value = getattr(args, name)
        if not 0.0 < value <= 1.0:
            raise ValueError(f"--{name.replace('_', '-')} must be in (0, 1], got {value:g}")
    return node_slo({"cpuThreshold": args.cpu_threshold, "memoryThreshold": args.memory_threshold}).thresholds


def predict_settings(args: argparse.Namespace) -> PredictSettings:
    return PredictSettings(lead_s=args.predict_lead * 60, quantile=args.predict_quantile,
                           refit_s=args.predict_refit * 3600,
                           history_s=None if args.predict_history is None else args.predict_history * 86400)
