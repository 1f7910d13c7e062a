"""`sigma sim`: a trace file that is not there is one line naming the command that fetches it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sigma.cli.main import main


def test_a_missing_trace_file_is_one_line_naming_sigma_data_fetch(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "v2018" / "derived" / "pivot_dag_jobs" / "jobs-5000-200-86400-172800.yaml"
    assert main(["sim", "--dag-jobs", str(missing), "--machines", "4", "--cpus", "8", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"sigma sim: {missing}: file not found; `sigma data fetch slices` downloads it"


@pytest.mark.parametrize("value", ["-1", "many", "2.5"])
def test_a_bad_search_jobs_count_names_the_flag(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["sim", "--search-jobs", value])
    assert exit_.value.code == 2
    assert f"--search-jobs: a whole number of jobs >= 0 (0: the whole workload), got '{value}'" in \
        capsys.readouterr().err
