from __future__ import annotations

from decimal import Decimal

import pytest

from sigma.quantity import (
    MAX_INT64,
    QuantityError,
    cpu_millis,
    format_bytes,
    format_cpu,
    memory_bytes,
    parse_quantity,
    parse_resource_quantity,
)


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


@pytest.mark.parametrize("huge", ["1e999999999", "1e400", "100Ei", "99999999999999999999999Ei", "8Ei",
                                  "9223372036854775808", "1e" + "9" * 5000, "1" + "0" * 10000, 2**63,
                                  float("inf"), "-100Ei"])
def test_quantities_beyond_int64_raise_the_quantity_error(huge: object) -> None:
    with pytest.raises(QuantityError) as err:
        parse_quantity(huge)  # type: ignore[arg-type]
    assert len(str(err.value)) < 200  # a megabyte of digits is not echoed back


def test_the_largest_representable_values_are_accepted() -> None:
    assert memory_bytes("9223372036854775807") == MAX_INT64
    assert memory_bytes("7Ei") == 7 * 2**60
    assert cpu_millis("9223372036854775807m") == MAX_INT64
    assert cpu_millis("9223372036854775.807") == MAX_INT64
    with pytest.raises(QuantityError, match="9223372036854775807m"):
        cpu_millis("9223372036854775.808")
    with pytest.raises(QuantityError):
        parse_resource_quantity("requests.cpu", "1e17")
    assert parse_resource_quantity("memory", "1e17") == Decimal("1e17")


def test_tiny_values_round_up_to_a_nano_unit_as_kubernetes_does() -> None:
    assert parse_quantity("1e-999999999") == Decimal("1e-9")
    assert cpu_millis("1e-999999999") == 1
    assert parse_quantity("0e999999999") == 0
    assert parse_quantity("-1e-20") == Decimal("-1e-9")


def test_nan_is_not_a_quantity() -> None:
    with pytest.raises(QuantityError, match="not a quantity"):
        parse_quantity(float("nan"))
