"""`sigma data`: the trace data Sigma's simulator and benchmarks read.

    sigma data list
    sigma data fetch [--data-dir DIR] [--mirror URL] [--extract] [NAME...]

NAME is a set (v2017, v2018, slices), one official file (v2018-batch_task, ...) or a slice's
path; none fetches everything. Files land in DIR/alibaba/ (official ones under
<version>/full/); DIR defaults to where Sigma reads data (sigma.data_paths).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

from sigma.data_fetch import FetchError, extract, fetch
from sigma.data_manifest import FILES, resolve
from sigma.data_paths import DATA_DIR_ENV, DataDirNotFound, shared_data_dir


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("data", help="download the Alibaba cluster traces (sigma data fetch)")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    f = verbs.add_parser("fetch", help="download trace files resumably and verify their checksums")
    f.add_argument("names", nargs="*", metavar="NAME", help="v2017, v2018, slices, a file's name (see `sigma data "
                                                           "list`); none: everything")
    f.add_argument("--data-dir", type=Path, help=f"the data directory (default: ${DATA_DIR_ENV}, else where Sigma "
                                                 "reads its data)")
    f.add_argument("--mirror", metavar="URL", help="fetch URL/<path under alibaba/> instead of the official hosts")
    f.add_argument("--extract", action="store_true", help="unpack the official tar.gz archives beside themselves")
    f.set_defaults(func=run_fetch)
    lst = verbs.add_parser("list", help="the files `sigma data fetch` knows, with sizes and checksums")
    lst.set_defaults(func=run_list)


def run_list(args: argparse.Namespace) -> int:
    out = Console()
    for f in FILES:
        size = f"{f.size} bytes" if f.size else (f"{f.size_published} (published)" if f.size_published else "size ?")
        check = "sha256 published" if f.sha256 and f.group != "slices" else (
            "sha256 of the shipped copy" if f.sha256 else "sha256 recorded on first download")
        out.print(f"{f.name:<58} {f.group:<7} {size:<20} {check}", soft_wrap=True, highlight=False)
    return 0


def data_dir(given: Path | None) -> Path:
    if given is not None:
        return given
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).expanduser()  # fetch creates it: it is where the data is to go
    return shared_data_dir()


def run_fetch(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    try:
        entries = resolve(args.names)
        root = data_dir(args.data_dir) / "alibaba"
        root.mkdir(parents=True, exist_ok=True)
    except (ValueError, DataDirNotFound, OSError) as e:
        err.print(f"[red]sigma data fetch: {e}[/]", soft_wrap=True)
        return 2
    failed = 0
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        for entry in entries:
            task = bar.add_task(entry.name, total=None)

            def progress(done: int, total: int | None, task: TaskID = task) -> None:
                bar.update(task, completed=done, total=total)

            try:
                got = fetch(entry, root, args.mirror, progress)
                names = extract(got.path) if args.extract and entry.archive else []
            except (FetchError, OSError) as e:
                failed += 1
                err.print(f"[red]sigma data fetch {entry.name}: {e}[/]", soft_wrap=True)
                continue
            finally:
                bar.remove_task(task)
            unpacked = f", unpacked {len(names)} files" if names else ""
            err.print(f"{entry.name}: {got.status}, sha256 {got.checksum} ({got.sha256[:12]}...){unpacked}: "
                      f"{got.path}", soft_wrap=True, highlight=False)
    return 1 if failed else 0
