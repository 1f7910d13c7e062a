"""The piece picker: which piece to fetch next, and from whom. Pure: state in, plan out.

Rules, in the order they apply:
1. Rarest first. A piece held by few peers is fetched before a common one, so that every
   piece gets copied early and a peer leaving cannot take the last copy with it.
2. Ties are broken by a seeded shuffle. Peers that start at the same moment (a flash crowd)
   see identical rarity everywhere; each peer's own seed spreads them over different pieces,
   which is what lets them trade with each other at once.
   Blob order where rarity no longer matters: a piece that `COMMON` or more peers hold is
   not at risk, so those are fetched lowest index first, and pieces nobody holds go to the
   registry from the lowest `SOURCE_WINDOW` unclaimed indexes (shuffled within). The whole-
   blob digest (wire.BlobHasher) can only run over the contiguous prefix a peer holds: in
   random order most of the blob would still be unhashed when its last piece lands, and
   every node would then hash hundreds of MiB at once, at the end, on shared CPUs.
3. The least busy holder serves a piece; a peer never has more than `per_peer_limit`
   requests in flight from us, and a peer that failed or served a corrupt piece is excluded.
   A peer that just refused us for lack of upload slots (`busy`) is not asked for a while;
   its pieces wait for it or for other holders (never the registry).
4. A piece no usable peer holds goes back to the registry, unless another peer has already
   claimed it there (it will soon hold it: wait instead of adding load on the registry).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

REGISTRY = "registry"
COMMON = 3  # usable holders from which a piece is common: fetched in blob order
SOURCE_WINDOW = 16  # registry pieces are picked among this many lowest unclaimed indexes


@dataclass(frozen=True)
class PickState:
    pieces: int
    have: frozenset[int]
    in_flight: Mapping[int, str]  # piece -> source (a peer, or REGISTRY)
    holders: Mapping[str, frozenset[int]]  # peer -> pieces it announced (ourselves excluded)
    excluded: frozenset[str] = frozenset()  # peers that failed or served a corrupt piece
    failed: frozenset[tuple[int, str]] = frozenset()  # (piece, peer) pairs not to retry
    claimed_elsewhere: frozenset[int] = frozenset()  # pieces another peer fetches from the registry
    busy: frozenset[str] = frozenset()  # peers whose upload slots were all taken a moment ago
    per_peer_limit: int = 2
    registry_limit: int = 4
    total_limit: int = 8
    seed: int = 0


@dataclass(frozen=True)
class Pick:
    from_peers: tuple[tuple[int, str], ...] = ()  # (piece, peer)
    from_registry: tuple[int, ...] = ()  # to claim at the tracker, then fetch by Range
    waiting: tuple[int, ...] = ()  # nobody holds these yet, someone else is fetching them
    rarity: Mapping[int, int] = field(default_factory=dict)  # piece -> usable holders, for reports


def usable_holders(state: PickState) -> dict[int, list[str]]:
    """piece -> peers we may ask for it (not excluded, that pair not failed before)."""
    out: dict[int, list[str]] = {}
    for peer in sorted(state.holders):
        if peer in state.excluded:
            continue
        for piece in state.holders[peer]:
            if (piece, peer) not in state.failed:
                out.setdefault(piece, []).append(peer)
    return out


def pick(state: PickState) -> Pick:
    rng = random.Random(state.seed)
    wanted = [p for p in range(state.pieces) if p not in state.have and p not in state.in_flight]
    holders = usable_holders(state)
    rarity = {p: len(holders.get(p, ())) for p in wanted}
    # Pieces for the registry: the lowest unclaimed indexes nobody holds, a seeded shuffle
    # of the first SOURCE_WINDOW (claimers starting together pick different ones).
    source = [p for p in wanted if rarity[p] == 0 and p not in state.claimed_elsewhere]
    window = source[:SOURCE_WINDOW]
    rng.shuffle(window)
    order = {p: i for i, p in enumerate(window + source[SOURCE_WINDOW:])}
    rng.shuffle(wanted)
    # Stable sort after the shuffle: rarest first, seeded order among rare equals, blob
    # order among common pieces and among the registry's.
    wanted.sort(key=lambda p: (min(rarity[p], COMMON), p if rarity[p] >= COMMON else order.get(p, 0)))

    busy = Counter(state.in_flight.values())
    budget = state.total_limit - len(state.in_flight)
    from_peers: list[tuple[int, str]] = []
    from_registry: list[int] = []
    waiting: list[int] = []
    for piece in wanted:
        if budget <= 0:
            break
        peers = holders.get(piece)
        if peers:
            free = [p for p in peers if busy[p] < state.per_peer_limit and p not in state.busy]
            if not free:
                continue  # every holder is saturated by us: a later round
            peer = min(free, key=lambda p: (busy[p], rng.random()))
            busy[peer] += 1
            from_peers.append((piece, peer))
            budget -= 1
        elif piece in state.claimed_elsewhere:
            waiting.append(piece)
        elif busy[REGISTRY] < state.registry_limit:
            busy[REGISTRY] += 1
            from_registry.append(piece)
            budget -= 1
    return Pick(tuple(from_peers), tuple(from_registry), tuple(waiting), rarity)
