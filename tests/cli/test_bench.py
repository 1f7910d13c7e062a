"""`sigma bench`: trace data that is not there is one line naming the command that fetches it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sigma.cli.main import main


@pytest.mark.parametrize(("bench", "name"), [("sim", "slices"), ("scheduler", "slices")])
def test_missing_trace_data_is_one_line_naming_sigma_data_fetch(bench: str, name: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SIGMA_DATA_DIR", str(tmp_path))
    assert main(["bench", bench, "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"sigma bench {bench}: {tmp_path}/alibaba/")
    assert f"`sigma data fetch {name}` downloads it" in err


def test_a_data_dir_that_is_not_there_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SIGMA_DATA_DIR", str(tmp_path / "nowhere"))
    assert main(["bench", "sim"]) == 2
    err = capsys.readouterr().err.strip()
    assert "SIGMA_DATA_DIR" in err and "sigma data fetch slices" in err and len(err.splitlines()) == 1
