"""Kubernetes resource quantities ("500m", "2", "1.5Gi", "128974848", "1e3").

Pure functions shared by API validation, the scheduling core, the agent and the simulator.
CPU is carried as integer milli-cores and memory as integer bytes everywhere inside Sigma.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$")


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity (or is negative where that is not allowed)."""


def parse_quantity(value: str | int | float) -> Decimal:
    """The exact value of a quantity. Raises QuantityError with the reason."""
    if isinstance(value, bool):
        raise QuantityError(f"quantities must be numbers or strings, not {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise QuantityError(f"quantities must be numbers or strings, not {type(value).__name__}")
    text = value.strip()
    match = _QUANTITY.match(text)
    if not match:
        raise QuantityError(f"quantities must match the regular expression "
                            f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$', got {value!r}")
    number, exponent, suffix = match.groups()
    try:
        base = Decimal(number)
    except InvalidOperation as err:  # pragma: no cover - the regex already guards this
        raise QuantityError(f"unparsable quantity {value!r}") from err
    if exponent:
        return base * (Decimal(10) ** int(exponent[1:]))
    if suffix in _BINARY:
        return base * _BINARY[suffix]
    return base * _DECIMAL[suffix or ""]


def parse_nonnegative(value: str | int | float) -> Decimal:
    q = parse_quantity(value)
    if q < 0:
        raise QuantityError(f"must be greater than or equal to 0, got {value!r}")
    return q


def cpu_millis(value: str | int | float) -> int:
    """CPU in milli-cores, rounded up as Kubernetes does (0.0001 -> 1m)."""
    q = parse_quantity(value) * 1000
    return int(q.to_integral_value(rounding="ROUND_CEILING"))


def memory_bytes(value: str | int | float) -> int:
    q = parse_quantity(value)
    return int(q.to_integral_value(rounding="ROUND_CEILING"))


def resource_units(resource: str, value: str | int | float) -> int:
    """The integer unit Sigma uses for a resource: milli-cores for cpu and sigma.io/batch-cpu
    (whose quantities are already milli-cores by convention, e.g. "2000"), bytes otherwise."""
    if resource == "cpu":
        return cpu_millis(value)
    return memory_bytes(value)


def format_cpu(millis: int) -> str:
    return f"{millis // 1000}" if millis % 1000 == 0 else f"{millis}m"


def format_bytes(n: int) -> str:
    for suffix, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n >= size and n % size == 0:
            return f"{n // size}{suffix}"
    return str(n)
