"""Benchmarks run by `sigma bench NAME [--json] [args]`.

Each benchmark is a module ``sigma.bench.<name>`` (dashes as underscores) exposing ``run(argv: list[str]) -> dict``:
it parses its own arguments, shows progress on stderr, and returns the result, which the CLI
prints as the last line (a JSON line with --json). Benchmarks measure; they never assert.
"""

NAMES = ("scheduler", "api", "isolation", "sim", "predict", "p2p", "failover", "soak", "delete",
         "service-sync", "service", "runtimes", "sweep", "festival")
