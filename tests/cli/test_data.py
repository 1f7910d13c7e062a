"""`sigma data fetch` and `sigma data list` against a local server standing in for the hosts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sigma.cli.main import main
from sigma.data_manifest import SLICES
from tests.range_server import Files, serving

SLICE = SLICES[1]  # v2017/server_event.csv, 47,615 bytes


def test_fetch_downloads_verifies_and_then_only_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = b"2017 trace archive\n" * 100
    files = Files({"/v2017/full/alibaba-trace-2017.tar.gz": body})
    with serving(files) as base:
        assert main(["data", "fetch", "--data-dir", str(tmp_path), "--mirror", base, "v2017"]) == 0
        assert main(["data", "fetch", "--data-dir", str(tmp_path), "--mirror", base, "v2017"]) == 0
    err = capsys.readouterr().err
    assert "v2017: downloaded, sha256 recorded" in err and "v2017: verified, sha256 recorded earlier" in err
    assert (tmp_path / "alibaba/v2017/full/alibaba-trace-2017.tar.gz").read_bytes() == body
    assert len(files.ranges) == 1  # the second run did not download again
    assert (tmp_path / "alibaba/v2017/full/alibaba-trace-2017.tar.gz.sha256").read_text().split()[0] == \
        hashlib.sha256(body).hexdigest()


def test_a_slice_that_does_not_match_its_checksum_is_one_line_and_exit_1(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    with serving(Files({f"/{SLICE.dest}": b"tampered\n"})) as base:
        assert main(["data", "fetch", "--data-dir", str(tmp_path), "--mirror", base, SLICE.name]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"sigma data fetch {SLICE.name}: {base}/{SLICE.dest}: sha256")
    assert len(err.splitlines()) == 1 and not (tmp_path / "alibaba" / SLICE.dest).exists()


def test_an_unknown_name_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "fetch", "--data-dir", str(tmp_path), "v2019"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown data set 'v2019'" in err and len(err.splitlines()) == 1


def test_list_shows_every_file_and_how_it_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "v2018-batch_instance" in out and "20G (published)" in out and "sha256 published" in out
    assert "v2017 " in out and "sha256 recorded on first download" in out
