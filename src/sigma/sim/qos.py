"""Level-0 and the agent ladder on every simulated node, by the live system's own functions.

Each tick, for every node: `level0.batch_allocatable` from prod's usage and its peak over the
window (what the agent's NodeMetric reports), `ladder.suppress_quota` for the batch CPU cap,
and `ladder.choose_evictions` where batch no longer fits. The functions are scalar, per node;
nodes with the same inputs get the same answer, so answers are memoised on the inputs
(nodes hosting the same mix of prod pods repeat each other every tick). That is the
"group identical decisions" rule applied to nodes instead of instances.

Under sigma-predictive, the predicted prod usage per node (sigma.sim.forecast) goes into
NodeInput.predicted, the same field the live Level-0 fills from NodeMetric's `predicted`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from sigma.colocation.ladder import (
    DEFAULT_MEMORY_HIGH,
    DEFAULT_MEMORY_LOW,
    Eviction,
    NodeState,
    PodUsage,
    choose_evictions,
    suppress_quota,
)
from sigma.colocation.ladder_counts import PodGroup, choose_eviction_counts
from sigma.colocation.level0 import (
    DEFAULT_THRESHOLDS,
    NodeInput,
    ProdUsage,
    Resources,
    Thresholds,
    batch_allocatable,
    should_update,
)

I64 = npt.NDArray[np.int64]
# Odd 64-bit multipliers: a row's fingerprint is its dot product with them (wrapping).
_FINGERPRINT = np.random.default_rng(20170).integers(1, 1 << 62, size=16, dtype=np.int64) | 1


def distinct_rows(keys: I64) -> tuple[I64, I64]:
    """The rows of `keys` grouped by value: the index of one row of each distinct value, and
    per row which of them it equals. Rows are compared by a fingerprint (one sort of
    numbers, not of rows), checked against the rows themselves: exact either way."""
    if keys.shape[1] > _FINGERPRINT.size or keys.shape[0] == 0:
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    else:
        prints = keys @ _FINGERPRINT[: keys.shape[1]]
        _, first, inverse = np.unique(prints, return_index=True, return_inverse=True)
        if not np.array_equal(keys[first][inverse], keys):  # two values shared a fingerprint
            _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    return np.asarray(first, dtype=np.int64), np.asarray(inverse, dtype=np.int64).reshape(-1)


def agreed_thresholds(thresholds: Thresholds, evict_low: float = DEFAULT_MEMORY_LOW) -> Thresholds:
    """Level-0's thresholds as the ladder can honour them. Batch memory that Level-0 offers up to
    `memory` x capacity must not be memory the ladder then takes back: above its high watermark
    the agent evicts batch down to `evict_low`. With memoryThreshold 0.95 against the 0.90/0.85
    watermarks, the scheduler refilled every node the agent had just emptied, each tick, and a
    higher threshold needed more machines, not fewer. So the memory share batch may be given
    stops at the low watermark; the cpu threshold needs no cap (cpu is throttled, never evicted
    for use)."""
    return Thresholds(thresholds.cpu, min(thresholds.memory, evict_low))


class NodeQoS:
    """Per-node Level-0 allocatable and suppress quotas for the whole cluster, per tick."""

    def __init__(self, cpu_capacity: I64, memory_capacity: I64, window_ticks: int,
                 thresholds: Thresholds = DEFAULT_THRESHOLDS) -> None:
        self.cpu_capacity = cpu_capacity
        self.memory_capacity = memory_capacity
        self.thresholds = agreed_thresholds(thresholds)
        nodes = len(cpu_capacity)
        # Recent prod usage per node, one row per tick: the peak over the window is its max.
        self.history_cpu = np.zeros((window_ticks, nodes), dtype=np.int64)
        self.history_memory = np.zeros((window_ticks, nodes), dtype=np.int64)
        self.slot = 0
        self._allocatable: dict[tuple[int, ...], tuple[int, int]] = {}
        self._quota: dict[tuple[int, int], int] = {}
        # The previous tick's inputs and answers: prod curves move every 300 s, ticks come
        # every 60 s, and a batch-only cluster never moves, so most ticks repeat the last one
        # (one array comparison instead of the row sort np.unique does).
        self._last: dict[str, tuple[I64, tuple[I64, ...]]] = {}
        self.published: tuple[I64, I64] | None = None
        self._asked: tuple[I64, I64] | None = None  # the values `publish` was last given
        self._moved: dict[tuple[int, int, int, int], bool] = {}

    def observe(self, cpu: I64, memory: I64) -> None:
        """The agents' NodeMetric reports for this tick."""
        self.history_cpu[self.slot] = cpu
        self.history_memory[self.slot] = memory
        self.slot = (self.slot + 1) % len(self.history_cpu)

    def allocatable(self, now: float, cpu: I64, memory: I64, prod_cpu_requests: I64,
                    prod_memory_requests: I64, predicted: tuple[I64, I64] | None = None) -> tuple[I64, I64]:
        """Batch-cpu and batch-memory allocatable per node (Level-0); `predicted` is the prod
        usage per node forecast for the coming lead time (cpu, memory), if any."""
        peak_cpu, peak_memory = self.history_cpu.max(axis=0), self.history_memory.max(axis=0)
        columns = [self.cpu_capacity, self.memory_capacity, prod_cpu_requests, prod_memory_requests,
                   cpu, memory, peak_cpu, peak_memory]
        if predicted is not None:
            columns += predicted
        keys = np.stack(columns, axis=1)
        last = self._repeat("allocatable", keys)
        if last is not None:
            return last[0], last[1]
        # Nodes with the same prod mix report the same numbers: one decision per distinct row.
        first, inverse = distinct_rows(keys)
        answers = []
        for key in map(tuple, keys[first].tolist()):
            found = self._allocatable.get(key)
            if found is None:
                node = NodeInput(capacity=Resources(key[0], key[1]), prod_requests=Resources(key[2], key[3]),
                                 usage=ProdUsage(now, key[4], key[5], key[6], key[7]),
                                 predicted=Resources(key[8], key[9]) if predicted is not None else None,
                                 thresholds=self.thresholds)
                result = batch_allocatable(node, now)
                found = self._allocatable[key] = (result.cpu_millis, result.memory_bytes)
            answers.append(found)
        both = np.array(answers, dtype=np.int64).reshape(-1, 2)[inverse]
        cpu_out, memory_out = both[:, 0].copy(), both[:, 1].copy()
        cpu_out.flags.writeable = memory_out.flags.writeable = False
        self._last["allocatable"] = (keys, (cpu_out, memory_out))
        return cpu_out, memory_out

    def _repeat(self, what: str, keys: I64) -> tuple[I64, ...] | None:
        """The previous answer when the inputs are exactly the previous ones (answers are
        handed out read-only, so no caller can change a cached one)."""
        last = self._last.get(what)
        if last is not None and np.array_equal(last[0], keys):
            return last[1]
        return None

    def publish(self, cpu: I64, memory: I64) -> tuple[I64, I64]:
        """What Level-0 writes on the Nodes, which is what the scheduler and the agents act on:
        a node's value changes only when the live controller's `should_update` says it moved
        by more than 5%. Without this, every wiggle of prod usage would shrink batch
        allocatable by a little and evict the batch packed up to it."""
        if self.published is None or self._asked is None:
            self.published = self._asked = (cpu, memory)
            return self.published
        if cpu is self._asked[0] and memory is self._asked[1]:
            return self.published  # `allocatable` repeated its last answer: so does this
        self._asked = (cpu, memory)
        old_cpu, old_memory = self.published
        changed = np.flatnonzero((cpu != old_cpu) | (memory != old_memory))
        if changed.size == 0:
            return self.published
        keys = np.stack([old_cpu[changed], old_memory[changed], cpu[changed], memory[changed]], axis=1)
        first, inverse = distinct_rows(keys)
        moves = np.zeros(first.size, dtype=bool)
        for i, key in enumerate(map(tuple, keys[first].tolist())):
            found = self._moved.get(key)
            if found is None:
                found = self._moved[key] = should_update(Resources(key[0], key[1]), Resources(key[2], key[3]))
            moves[i] = found
        move = moves[inverse]
        if move.any():
            new_cpu, new_memory = old_cpu.copy(), old_memory.copy()
            new_cpu[changed[move]] = cpu[changed[move]]
            new_memory[changed[move]] = memory[changed[move]]
            self.published = (new_cpu, new_memory)
        return self.published

    def quota(self, cpu: I64) -> I64:
        """The batch CPU cap (CFS quota) each agent sets for its current prod usage."""
        keys = np.stack([self.cpu_capacity, cpu], axis=1)
        last = self._repeat("quota", keys)
        if last is not None:
            return last[0]
        rows, inverse = np.unique(keys, axis=0, return_inverse=True)
        answers = np.empty(len(rows), dtype=np.int64)
        for r, (capacity, used) in enumerate(rows.tolist()):
            found = self._quota.get((capacity, used))
            if found is None:
                cap = suppress_quota(capacity, self.thresholds.cpu, used).millis
                found = self._quota[(capacity, used)] = capacity if cap is None else cap
            answers[r] = found
        quota = answers[inverse.reshape(-1)]
        quota.flags.writeable = False
        self._last["quota"] = (keys, (quota,))
        return quota

    def over_limit(self, memory_used: I64, batch_cpu: I64, batch_memory: I64, alloc_cpu: I64,
                   alloc_memory: I64) -> I64:
        """Nodes where the ladder may evict: memory past the high watermark, or batch requests
        above the (shrunk) batch allocatable. Only these nodes are looked at pod by pod."""
        hot = memory_used > DEFAULT_MEMORY_HIGH * self.memory_capacity
        hot |= (batch_cpu > alloc_cpu) | (batch_memory > alloc_memory)
        return np.flatnonzero(hot)

    def evictions(self, node: int, memory_used: int, alloc_cpu: int, alloc_memory: int,
                  pods: Sequence[PodUsage]) -> list[Eviction]:
        state = NodeState(int(self.memory_capacity[node]), memory_used, alloc_cpu, alloc_memory)
        return choose_evictions(state, pods)

    def eviction_counts(self, node: int, memory_used: int, alloc_cpu: int, alloc_memory: int,
                        groups: Sequence[PodGroup]) -> list[int]:
        """`evictions` for groups of identical instances: how many of each group to evict."""
        state = NodeState(int(self.memory_capacity[node]), memory_used, alloc_cpu, alloc_memory)
        return choose_eviction_counts(state, groups)
