from __future__ import annotations

import pytest

from sigma.quantity import QuantityError, cpu_millis, format_bytes, format_cpu, memory_bytes


@pytest.mark.parametrize(("text", "millis"), [("500m", 500), ("2", 2000), ("0.1", 100), ("1.5", 1500),
                                              (3, 3000), ("0.0001", 1), ("1e3", 1_000_000)])
def test_cpu_quantities_become_millicores(text: str, millis: int) -> None:
    assert cpu_millis(text) == millis


@pytest.mark.parametrize(("text", "n"), [("128Mi", 128 * 2**20), ("1Gi", 2**30), ("1G", 10**9), ("100", 100),
                                         ("1.5Ki", 1536), ("1k", 1000)])
def test_memory_quantities_become_bytes(text: str, n: int) -> None:
    assert memory_bytes(text) == n


@pytest.mark.parametrize("bad", ["", "abc", "1.2.3", "5Xi", "1 Gi", True, None])
def test_unparsable_quantities_raise(bad: object) -> None:
    with pytest.raises(QuantityError):
        cpu_millis(bad)  # type: ignore[arg-type]


def test_formatting_round_trips_common_values() -> None:
    assert format_cpu(2000) == "2" and format_cpu(250) == "250m"
    assert format_bytes(2**30) == "1Gi" and format_bytes(1000) == "1000"
