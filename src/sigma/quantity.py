"""Kubernetes resource quantities ("500m", "2", "1.5Gi", "128974848", "1e3").

Pure functions shared by API validation, the scheduling core, the agent and the simulator.
CPU is carried as integer milli-cores and memory as integer bytes everywhere inside Sigma.
A quantity beyond what Kubernetes' resource.Quantity represents (int64 in its unit, and
int64 milli-cores for cpu) raises QuantityError, so the API refuses it with 422 where it is
written rather than letting it overflow a scheduler's or a cgroup's integers later.
"""

from __future__ import annotations

import math
import re
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_POWERS = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$")

# Kubernetes' resource.Quantity holds at most int64's maximum in its base unit (bytes, cores,
# pods) and cpu is read everywhere as MilliValue(), an int64 of milli-cores. Sigma carries the
# same integers into numpy int64 arrays, cgroup files and sums: a larger value cannot be
# represented there, so it is refused where it is parsed instead of failing far away.
MAX_INT64 = 2**63 - 1
# An exponent is an int32 in Kubernetes; anything beyond is not a quantity at all.
_MAX_EXPONENT_DIGITS = 10
# Every value is rounded up to a whole nano-unit, as Kubernetes rounds (a non-zero request
# never becomes zero). With at most 19 integer digits that leaves 28 significant digits,
# which Decimal's default context (precision 28) then multiplies and compares exactly.
_NANO = Decimal("1e-9")
# Wide enough for any exponent the regular expression lets through, never rounding the input.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, rounding=ROUND_UP,
                 traps=[InvalidOperation, Overflow, DivisionByZero])
CPU_RESOURCES = frozenset({"cpu", "requests.cpu", "limits.cpu"})


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity (or is negative or out of range where that is
    not allowed)."""


def _shown(value: object) -> str:
    """The value for an error message, cut short: a megabyte of digits is not worth echoing."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}...({len(text)} characters)"


def _too_large(value: object, limit: str = str(MAX_INT64)) -> QuantityError:
    return QuantityError(f"quantity {_shown(value)} is too large: must be at most {limit}")


def parse_quantity(value: str | int | float) -> Decimal:
    """The value of a quantity, rounded up to a whole nano-unit (as Kubernetes does).
    Raises QuantityError with the reason, also for a magnitude beyond int64's maximum."""
    if isinstance(value, bool):
        raise QuantityError(f"quantities must be numbers or strings, not {value!r}")
    if isinstance(value, int):
        base, power10, factor = Decimal(value), 0, 1
    elif isinstance(value, float):
        if not math.isfinite(value):  # JSON's 1e400 is inf to Python, NaN is accepted too
            raise QuantityError(f"{value!r} is not a quantity") if math.isnan(value) else _too_large(value)
        base, power10, factor = Decimal(repr(value)), 0, 1
    elif isinstance(value, str):
        base, power10, factor = _split(value)
    else:
        raise QuantityError(f"quantities must be numbers or strings, not {type(value).__name__}")
    if base and base.adjusted() + power10 > 20:
        raise _too_large(value)  # decided before 10**power10 is ever built
    exact = base.scaleb(power10, _EXACT) * factor if factor != 1 else base.scaleb(power10, _EXACT)
    if abs(exact) > MAX_INT64:
        raise _too_large(value)
    return exact.quantize(_NANO, context=_EXACT)


def _split(value: str) -> tuple[Decimal, int, int]:
    """(number, power of ten, binary factor) of a quantity's text."""
    text = value.strip()
    match = _QUANTITY.match(text)
    if not match:
        raise QuantityError(f"quantities must match the regular expression "
                            f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$', got {_shown(value)}")
    number, exponent, suffix = match.groups()
    base = Decimal(number)  # exact: the constructor never rounds
    if exponent:
        digits = exponent[1:].lstrip("+-").lstrip("0")
        if len(digits) > _MAX_EXPONENT_DIGITS or abs(int(exponent[1:])) > 2**31 - 1:
            raise QuantityError(f"quantity {_shown(value)} has an exponent out of range")
        return base, int(exponent[1:]), 1
    if suffix in _BINARY:
        return base, 0, _BINARY[suffix]
    return base, _DECIMAL_POWERS[suffix or ""], 1


def parse_resource_quantity(resource: str, value: str | int | float) -> Decimal:
    """parse_quantity, and for cpu also within int64 milli-cores (Kubernetes' MilliValue)."""
    q = parse_quantity(value)
    if resource in CPU_RESOURCES and abs(q) * 1000 > MAX_INT64:
        raise _too_large(value, f"{MAX_INT64 // 1000}.{MAX_INT64 % 1000} ({MAX_INT64}m)")
    return q


def parse_nonnegative(value: str | int | float) -> Decimal:
    q = parse_quantity(value)
    if q < 0:
        raise QuantityError(f"must be greater than or equal to 0, got {value!r}")
    return q


def cpu_millis(value: str | int | float) -> int:
    """CPU in milli-cores, rounded up as Kubernetes does (0.0001 -> 1m)."""
    q = parse_resource_quantity("cpu", value) * 1000
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
