import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_bench_predict_prints_one_json_line_with_every_strategy_per_scenario(tmp_path: Path) -> None:
    plot = tmp_path / "predict.png"
    out = subprocess.run([sys.executable, "-m", "sigma", "bench", "predict", "--json", "--seeds", "1",
                          "--window-h", "1", "--origin-h", "1", "--plot", str(plot)],
                         capture_output=True, text=True, timeout=280, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["bench"] == "predict"
    for scenario in ("festival", "alibaba_v2018"):
        rows = result[scenario]
        assert {"predictive", "reactive", "static_peak"} <= set(rows)
        for row in (rows[s] for s in ("predictive", "reactive", "static_peak")):
            assert row["violation_minutes"] >= 0 and row["slack"] > -1
        assert rows["static_peak"]["violation_minutes"] == 0
        assert rows["predictive"]["mape"] > 0 and rows["predictive"]["batch_lost_core_hours"] >= 0
        assert set(rows["forecast_mape"]) == {"sigma", "naive_seasonal", "holt_winters"}
    assert plot.stat().st_size > 10_000
