"""Prints how Sigma's packages import each other: one line per package with the packages
it imports, then every cycle between packages. Run: .venv/bin/python scripts/import_graph.py

The layers themselves are checked by import-linter (`lint-imports`, contracts in
pyproject.toml); this is the picture to read when a contract breaks."""

from __future__ import annotations

import sys
from itertools import combinations

import grimp


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def main() -> int:
    graph = grimp.build_graph("sigma")
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        src = package_of(module)
        for imported in graph.find_modules_directly_imported_by(module):
            dst = package_of(imported)
            if dst != src:
                edges.setdefault(src, set()).add(dst)
    for src in sorted(edges):
        print(f"{src:24} -> {', '.join(sorted(d.removeprefix('sigma.') for d in edges[src]))}")
    cycles = [(a, b) for a, b in combinations(sorted(edges), 2) if b in edges.get(a, ()) and a in edges.get(b, ())]
    print(f"\ncycles between packages: {len(cycles)}")
    for a, b in cycles:
        print(f"  {a} <-> {b}")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
