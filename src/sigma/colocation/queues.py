"""Fair sharing of batch capacity between queues (fuxi-scheduler's policy). Pure.

Each BatchJob names a queue (spec.queue, default "default"). A queue has:
- min_share: a guaranteed fraction of the cluster's batch capacity. Queues below their
  minimum are served first, the furthest below first.
- max_share: a ceiling; a queue never gets placements that would take it above this
  fraction (in its dominant resource), even when the rest of the cluster is idle.
- weight: between queues above their minimum, weighted Dominant Resource Fairness: the
  queue with the smallest dominant share / weight goes next. The dominant share of a queue
  is max(batch-cpu it holds / total batch-cpu, batch-memory it holds / total batch-memory),
  so a memory-heavy queue cannot hide behind its small cpu footprint.

The scheduler asks `next_queue` which queue to serve, `allowance` how many instances of a
given shape that queue may still start, and reports placements with `charge`, a chunk at a
time, so queues interleave within one cycle. A queue not in the config gets the defaults
(min 0, max 1, weight 1). The config is a mapping, e.g. from the master's options:

    {"queues": [{"name": "etl", "minShare": 0.2, "maxShare": 0.6, "weight": 2},
                {"name": "adhoc", "maxShare": 0.3}]}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QueueConfig:
    name: str
    min_share: float = 0.0
    max_share: float = 1.0
    weight: float = 1.0


Amounts = tuple[int, int]  # (batch-cpu milli-cores, batch-memory bytes)


def parse_queues(config: Mapping[str, Any] | None) -> dict[str, QueueConfig]:
    """Raises ValueError naming the bad entry: a scheduler must not start on a typo."""
    out: dict[str, QueueConfig] = {}
    for i, raw in enumerate((config or {}).get("queues") or []):
        try:
            queue = QueueConfig(str(raw["name"]), float(raw.get("minShare", 0.0)), float(raw.get("maxShare", 1.0)),
                                float(raw.get("weight", 1.0)))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"queues[{i}]: {err}") from err
        if not 0 <= queue.min_share <= queue.max_share <= 1 or queue.weight <= 0:
            raise ValueError(f"queues[{i}] ({queue.name}): need 0 <= minShare <= maxShare <= 1 and weight > 0")
        out[queue.name] = queue
    return out


class FairShare:
    def __init__(self, queues: Mapping[str, QueueConfig], total: Amounts, used: Mapping[str, Amounts]) -> None:
        self.queues = dict(queues)
        self.total = total
        self.used: dict[str, list[int]] = {name: list(amounts) for name, amounts in used.items()}

    def config(self, queue: str) -> QueueConfig:
        found = self.queues.get(queue)
        if found is None:  # the defaults, made once per queue (a cycle asks per group)
            found = self.queues[queue] = QueueConfig(queue)
        return found

    def share(self, queue: str) -> float:
        cpu, memory = self.used.get(queue, [0, 0])
        return max(cpu / self.total[0] if self.total[0] else 0.0, memory / self.total[1] if self.total[1] else 0.0)

    def _priority(self, queue: str) -> tuple[int, float, str]:
        cfg, share = self.config(queue), self.share(queue)
        if share < cfg.min_share:
            return (0, share / cfg.min_share, queue)
        return (1, share / cfg.weight, queue)

    def next_queue(self, candidates: Iterable[str]) -> str | None:
        ordered = list(candidates)
        if len(ordered) == 1:  # nothing to compare: a cycle with one queue asks once per group
            return ordered[0]
        return min(ordered, key=self._priority) if ordered else None

    def allowance(self, queue: str, request: Amounts) -> int:
        """How many more instances of `request` keep `queue` within its max share."""
        cfg = self.config(queue)
        used = self.used.get(queue, [0, 0])
        limits = []
        for dim in (0, 1):
            if request[dim] <= 0:
                continue
            ceiling = int(cfg.max_share * self.total[dim])
            limits.append(max(ceiling - used[dim], 0) // request[dim])
        return min(limits) if limits else 0

    def charge(self, queue: str, request: Amounts, count: int) -> None:
        used = self.used.setdefault(queue, [0, 0])
        used[0] += request[0] * count
        used[1] += request[1] * count
