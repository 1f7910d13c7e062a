"""Cache and memory-bandwidth isolation (Intel RDT through /sys/fs/resctrl): the plan. Pure.

The resctrl filesystem gives each group a `schemata` file, one line per resource:

    L3:0=fffff;1=fffff     capacity bitmask (CBM) of L3 ways per cache domain
    MB:0=100;1=100         memory bandwidth in percent per domain (MBA)

Sigma makes two groups. Prod keeps every way (batch cannot be fenced out of what prod
reads, but prod must never be fenced in); batch gets a contiguous slice of the lowest ways,
`batch_way_share` of them (CAT requires contiguous bits), so a scanning batch job can
evict at most that share of prod's cache lines. With MBA, batch is throttled to a
percentage of bandwidth, rounded down to the hardware's granularity.

The agent writes `plan.groups[name]` into `<root>/<name>/schemata` (and the pods' tasks
into `<root>/<name>/tasks`); without resctrl it reports that cache isolation is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

PROD_GROUP = "sigma-prod"
BATCH_GROUP = "sigma-batch"


@dataclass(frozen=True)
class RdtInfo:
    """What /sys/fs/resctrl/info says: info/L3/cbm_mask (hex), min_cbm_bits, the cache
    domain ids (from the root schemata) and, if MBA exists, info/MB/bandwidth_gran and
    min_bandwidth."""

    cbm_mask: str
    domains: tuple[int, ...] = (0,)
    min_cbm_bits: int = 1
    mba: bool = False
    bandwidth_gran: int = 10
    min_bandwidth: int = 10

    @property
    def ways(self) -> int:
        return bin(int(self.cbm_mask, 16)).count("1")


@dataclass(frozen=True)
class ResctrlPlan:
    groups: dict[str, list[str]]  # group name -> schemata lines
    reason: str


def resctrl_plan(info: RdtInfo, batch_way_share: float = 0.3, batch_bandwidth_percent: int = 30) -> ResctrlPlan:
    full = int(info.cbm_mask, 16)
    ways = info.ways
    batch_ways = min(max(round(ways * batch_way_share), info.min_cbm_bits, 1), ways)
    # The lowest bits of the full mask (it may not start at bit 0 on some parts).
    shift = (full & -full).bit_length() - 1
    batch_mask = ((1 << batch_ways) - 1) << shift
    prod_lines = [_line("L3", info.domains, f"{full:x}")]
    batch_lines = [_line("L3", info.domains, f"{batch_mask:x}")]
    reason = f"batch limited to {batch_ways}/{ways} L3 ways"
    if info.mba:
        gran = max(info.bandwidth_gran, 1)
        percent = max(batch_bandwidth_percent // gran * gran, info.min_bandwidth)
        prod_lines.append(_line("MB", info.domains, "100"))
        batch_lines.append(_line("MB", info.domains, str(min(percent, 100))))
        reason += f" and {min(percent, 100)}% of memory bandwidth"
    return ResctrlPlan({PROD_GROUP: prod_lines, BATCH_GROUP: batch_lines}, reason)


def _line(resource: str, domains: tuple[int, ...], value: str) -> str:
    return f"{resource}:" + ";".join(f"{d}={value}" for d in domains)
