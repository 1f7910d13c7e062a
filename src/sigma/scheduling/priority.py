"""Priority bands: the one table that says who may preempt whom.

Sigma follows Borg's rule: a pod never preempts another pod in its own band, only pods in
strictly lower priority bands. A priority outside every built-in band forms a band of its
own (exactly that value), so two custom priorities never share a band.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class PriorityBand:
    name: str
    low: int
    high: int

    def __contains__(self, priority: object) -> bool:
        return isinstance(priority, int) and self.low <= priority <= self.high


PROD = PriorityBand("sigma-prod", 9000, 9999)
MID = PriorityBand("sigma-mid", 7000, 7999)
BATCH = PriorityBand("sigma-batch", 5000, 5999)
FREE = PriorityBand("sigma-free", 3000, 3999)

BANDS: tuple[PriorityBand, ...] = (PROD, MID, BATCH, FREE)
"""Built-in bands, highest first. Also the PriorityClass values the API server installs."""


@cache
def band_of(priority: int) -> str:
    """The band's name; a priority outside every band is its own band, "priority-<value>"."""
    for band in BANDS:
        if priority in band:
            return band.name
    return f"priority-{priority}"


@cache
def band_ceiling(priority: int) -> int:
    """The highest priority in this priority's band (the value itself outside the bands)."""
    for band in BANDS:
        if priority in band:
            return band.high
    return priority


def may_preempt(preemptor: int, victim: int) -> bool:
    """True if a pod of priority `preemptor` may evict one of priority `victim`."""
    return victim < preemptor and band_of(victim) != band_of(preemptor)
