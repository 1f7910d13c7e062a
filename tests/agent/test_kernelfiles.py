"""Kernel files: a missing file is an answer (None), a present one is read as is or stripped."""

from __future__ import annotations

from pathlib import Path

from sigma.agent.kernelfiles import read_stripped, read_text


def test_a_file_is_read_whole_or_as_its_one_value(tmp_path: Path) -> None:
    knob = tmp_path / "cpu.weight"
    knob.write_text("100\n")
    assert (read_text(str(knob)), read_stripped(str(knob))) == ("100\n", "100")


def test_a_missing_file_is_none(tmp_path: Path) -> None:
    assert (read_text(str(tmp_path / "gone")), read_stripped(str(tmp_path / "gone"))) == (None, None)
