"""Resumable, verified downloads of trace files, against a local server (never the internet)."""

from __future__ import annotations

import hashlib
import io
import math
import socket
import tarfile
from pathlib import Path

import pytest

from sigma.data_fetch import FetchError, extract, fetch
from sigma.data_manifest import DataFile
from tests.range_server import Files, serving

BODY = bytes(range(256)) * 400  # 102,400 bytes
SHA = hashlib.sha256(BODY).hexdigest()


def entry(base: str, sha: str | None = SHA, *paths: str) -> DataFile:
    return DataFile("v2018-batch_task", "v2018", "v2018/full/batch_task.tar.gz",
                    tuple(f"{base}{p}" for p in (paths or ("/batch_task.tar.gz",))), sha)


def test_a_download_is_verified_and_takes_its_name_only_when_whole(tmp_path: Path) -> None:
    files = Files({"/batch_task.tar.gz": BODY})
    seen: list[tuple[int, int | None]] = []
    with serving(files) as base:
        got = fetch(entry(base), tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert got.status == "downloaded" and got.checksum == "published" and got.sha256 == SHA
    assert (tmp_path / "v2018/full/batch_task.tar.gz").read_bytes() == BODY
    assert not list(tmp_path.rglob("*.part"))
    assert seen[-1] == (len(BODY), len(BODY))


def test_a_cut_download_resumes_where_it_stopped(tmp_path: Path) -> None:
    files = Files({"/batch_task.tar.gz": BODY}, cut_after=30_000)
    part = tmp_path / "v2018/full/batch_task.tar.gz.part"
    with serving(files) as base:
        with pytest.raises(FetchError, match=r"cut at 30000 .*run again to resume"):
            fetch(entry(base), tmp_path)
        assert part.stat().st_size == 30_000
        got = fetch(entry(base), tmp_path)
    assert files.ranges == [None, "bytes=30000-"]  # only the rest was asked for
    assert got.status == "resumed" and got.sha256 == SHA
    assert got.path.read_bytes() == BODY and not part.exists()


def test_a_server_that_ignores_the_range_restarts_the_file(tmp_path: Path) -> None:
    files = Files({"/batch_task.tar.gz": BODY}, cut_after=10_000)
    with serving(files) as base:
        with pytest.raises(FetchError):
            fetch(entry(base), tmp_path)
        files.ignore_range = True
        got = fetch(entry(base), tmp_path)
    assert got.path.read_bytes() == BODY  # not 10,000 bytes twice


def test_a_bad_checksum_keeps_nothing(tmp_path: Path) -> None:
    with serving(Files({"/batch_task.tar.gz": BODY})) as base, \
            pytest.raises(FetchError, match=r"/batch_task.tar.gz: sha256 \w+ of the download does not match"):
        fetch(entry(base, "0" * 64), tmp_path)
    assert not list(tmp_path.rglob("batch_task*"))


def test_404_names_the_url_and_a_mirror_is_tried_next(tmp_path: Path) -> None:
    with serving(Files({"/b/batch_task.tar.gz": BODY})) as base:
        with pytest.raises(FetchError, match=f"{base}/a/batch_task.tar.gz: HTTP 404") as caught:
            fetch(entry(base, SHA, "/a/batch_task.tar.gz"), tmp_path)
        assert "\n" not in str(caught.value)
        got = fetch(entry(base, SHA, "/a/batch_task.tar.gz", "/b/batch_task.tar.gz"), tmp_path)
    assert got.path.read_bytes() == BODY


def test_a_server_that_is_down_names_the_url(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(FetchError, match=f"{url}/batch_task.tar.gz: cannot connect"):
        fetch(entry(url), tmp_path, timeout=2)


def test_without_a_published_checksum_the_first_download_is_recorded_and_checked_later(tmp_path: Path) -> None:
    with serving(Files({"/batch_task.tar.gz": BODY})) as base:
        first = fetch(entry(base, None), tmp_path)
        assert first.checksum == "recorded"
        record = tmp_path / "v2018/full/batch_task.tar.gz.sha256"
        assert record.read_text().split()[0] == SHA
        again = fetch(entry(base, None), tmp_path)
    assert (again.status, again.checksum) == ("verified", "recorded earlier")
    first.path.write_bytes(BODY[:-1] + b"x")  # damaged in place
    with pytest.raises(FetchError, match="does not match the expected"):
        fetch(entry("http://unused", None), tmp_path)


def test_extract_unpacks_beside_the_archive(tmp_path: Path) -> None:
    archive = tmp_path / "t.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("batch_task.csv")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"a,b\n"))
    assert extract(archive) == ["batch_task.csv"]
    assert (tmp_path / "batch_task.csv").read_bytes() == b"a,b\n"
    archive.write_bytes(b"not a tar")
    with pytest.raises(FetchError, match="cannot unpack"):
        extract(archive)


def sized(base: str, size: int | None = None, published: str | None = None) -> DataFile:
    return DataFile("v2018-batch_task", "v2018", "v2018/full/batch_task.tar.gz", (f"{base}/batch_task.tar.gz",),
                    None, size=size, size_published=published)


def test_a_server_announcing_more_than_the_file_is_refused_and_nothing_kept(tmp_path: Path) -> None:
    files = Files({"/batch_task.tar.gz": BODY})
    with serving(files) as base, pytest.raises(FetchError) as caught:
        fetch(sized(base, size=len(BODY) - 1), tmp_path)
    assert "more than the 102399 expected" in str(caught.value) and base in str(caught.value)
    assert not list(tmp_path.rglob("*.part")) and not (tmp_path / "v2018/full/batch_task.tar.gz").exists()


def test_a_server_sending_more_than_it_announced_is_cut_at_the_limit(tmp_path: Path) -> None:
    files = Files({"/batch_task.tar.gz": BODY * 40}, no_length=True)  # 4 MiB, no Content-Length
    with serving(files) as base, pytest.raises(FetchError) as caught:
        fetch(sized(base, published="1.0M"), tmp_path)  # ls -sh: at most 1 MiB, 5% spared
    assert "sent more than" in str(caught.value)
    assert not list(tmp_path.rglob("*.part")) and not (tmp_path / "v2018/full/batch_task.tar.gz").exists()


def test_published_sizes_bound_a_download() -> None:
    assert sized("x", size=10).max_bytes == 10
    assert sized("x", published="1.7G").max_bytes == math.ceil(1.7 * (1 << 30) * 1.05)
    assert sized("x", published="92K").max_bytes == math.ceil(92 * 1024 * 1.05)
    assert sized("x").max_bytes is None
