"""`sigma agent`'s flags as the agent's options."""

from __future__ import annotations

import argparse

import pytest

from sigma.cli.agent import add_parser, qos_options


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sigma")
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["agent", *argv])


def test_prod_cpu_counts_the_whole_node_by_default() -> None:
    assert qos_options(parse()).count_system_cpu is True
    assert qos_options(parse("--prod-cpu", "node")).count_system_cpu is True


def test_prod_cpu_pods_counts_only_the_prod_pods() -> None:
    options = qos_options(parse("--prod-cpu", "pods", "--qos-interval", "0.5"))
    assert options.count_system_cpu is False and options.interval == 0.5


def test_an_unknown_prod_cpu_source_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse("--prod-cpu", "machine")
    assert exit_.value.code == 2
    assert "--prod-cpu: invalid choice: 'machine'" in capsys.readouterr().err
