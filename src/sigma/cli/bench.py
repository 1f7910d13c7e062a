"""`sigma bench NAME [--json] [args]`: run a benchmark; its result is the last line."""

from __future__ import annotations

import argparse
import importlib
import json

from rich.console import Console

from sigma.bench import NAMES
from sigma.data_paths import DataDirNotFound, fetch_hint


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("bench", help="run a benchmark (the result is printed last, as JSON with --json)")
    p.add_argument("name", choices=NAMES, help="the benchmark; `sigma bench NAME --help` lists its arguments")
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the benchmark's own arguments")
    p.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"sigma.bench.{args.name.replace('-', '_')}")
    # --json may come after NAME, where argparse hands it to the benchmark's arguments.
    rest = [a for a in args.args if a != "--json"]
    as_json = args.json or len(rest) != len(args.args)
    try:
        result = module.run(rest)
    except (DataDirNotFound, FileNotFoundError, ValueError) as e:
        line = _missing_data(e)
        if line is None:
            raise
        Console(stderr=True).print(f"[red]sigma bench {args.name}: {line}[/]", soft_wrap=True)
        return 2
    if as_json:
        print(json.dumps(result), flush=True)
    else:
        Console().print_json(json.dumps(result))
    return 0


def _missing_data(e: Exception) -> str | None:
    """One line for trace data a benchmark needs and does not find (naming the `sigma data
    fetch` that gets it), else None: other errors are the benchmark's own."""
    if isinstance(e, DataDirNotFound):
        return str(e)
    path = getattr(e, "path", None) if isinstance(e, ValueError) else getattr(e, "filename", None)
    if path is None or not fetch_hint(path):
        return None
    if isinstance(e, ValueError):  # a TraceError: its text names the file and already carries the hint
        return str(e)
    return f"{path}: file not found{fetch_hint(path)}"
