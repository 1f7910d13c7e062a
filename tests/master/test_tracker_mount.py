"""The P2P tracker the master hosts under /p2p: the same registry-claim cap as the benchmark's."""

from __future__ import annotations

import asyncio

import httpx

from sigma.master.process import Master
from sigma.p2p.tracker import DEFAULT_SOURCE_CLAIMS

DIGEST = "sha256:" + "ab" * 32


def _claim_slots(options: dict[str, int]) -> int | None:
    """Claim 16 pieces as one peer, then ask how many claims another peer may still make."""
    master = Master("sqlite://:memory:", controllers=False, options=options)

    async def talk() -> int | None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=master.app), base_url="http://m") as http:
            meta = {"size": 64 << 20, "piece_size": 4 << 20}
            assert (await http.post(f"/p2p/blobs/{DIGEST}", json=meta)).status_code == 200
            claim = {"peer": "http://a", "pieces": list(range(16))}
            granted = (await http.post(f"/p2p/blobs/{DIGEST}/claim", json=claim)).json()["granted"]
            assert len(granted) == min(16, options.get("p2p_source_claims", DEFAULT_SOURCE_CLAIMS))
            view = (await http.get(f"/p2p/blobs/{DIGEST}", params={"peer": "http://b"})).json()
            slots: int | None = view["claim_slots"]
            return slots

    try:
        return asyncio.run(talk())
    finally:
        master.store.close()


def test_the_masters_tracker_caps_live_registry_claims_per_blob() -> None:
    assert _claim_slots({}) == 0
    assert _claim_slots({"p2p_source_claims": 10}) == 0
    assert _claim_slots({"p2p_source_claims": 20}) == 4
