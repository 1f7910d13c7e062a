"""The manifest of fetchable trace files: names, checksums, and which NAME fetches a path."""

from __future__ import annotations

import hashlib
import re

import pytest

from sigma.data_manifest import FILES, OFFICIAL, SLICES, V2018_TABLES, fetch_name, resolve
from sigma.data_paths import alibaba_dir


def test_names_resolve_to_sets_files_and_everything() -> None:
    assert [f.name for f in resolve(["v2018"])] == [f"v2018-{t}" for t in V2018_TABLES]
    assert [f.name for f in resolve(["v2018-batch_task", "v2017", "v2018-batch_task"])] == ["v2017", "v2018-batch_task"]
    assert resolve([]) == list(FILES)
    assert len(resolve(["slices"])) == len(SLICES) == 32
    with pytest.raises(ValueError, match="unknown data set 'v2019'; known: v2017, v2018, slices"):
        resolve(["v2019"])


def test_every_v2018_table_has_its_published_sha256_and_the_v2017_archive_none() -> None:
    by_name = {f.name: f for f in OFFICIAL}
    assert by_name["v2017"].sha256 is None  # SHA256SUM names another file (trace_201708.tgz)
    for table in V2018_TABLES:
        f = by_name[f"v2018-{table}"]
        assert f.sha256 is not None and re.fullmatch(r"[0-9a-f]{64}", f.sha256)
        assert f.archive and f.dest == f"v2018/full/{table}.tar.gz"
        assert all(url.endswith(f"/{table}.tar.gz") for url in f.urls)


def test_the_slices_checksums_are_of_the_copies_the_repository_ships() -> None:
    root = alibaba_dir()
    for f in SLICES:
        path = root / f.dest
        if not path.exists():  # a fuller data directory may lay files out differently
            continue
        data = path.read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (f.size, f.sha256), f.dest


@pytest.mark.parametrize(("path", "name"), [
    ("/home/u/data/alibaba/v2017/batch_task.csv", "slices"),
    ("/home/u/data/alibaba/v2018/derived/pivot_dag_jobs/jobs-5000-200-86400-172800.yaml", "slices"),
    ("/elsewhere/v2018/derived/cluster_avg_machine_usage/day_9", "slices"),
    ("/big/v2018/full/container_usage.csv", "v2018-container_usage"),
    ("/big/v2017/full/server_usage.csv", "v2017"),
    ("/home/u/my_jobs.yaml", None),
])
def test_a_missing_path_maps_to_the_name_that_fetches_it(path: str, name: str | None) -> None:
    assert fetch_name(path) == name
