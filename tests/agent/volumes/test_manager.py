"""The volume manager's pure rules (its I/O runs in test_volumes_e2e.py)."""

from __future__ import annotations

from sigma.agent.volumes.manager import token_due


def test_token_renewed_at_80_percent_of_its_lifetime() -> None:
    assert not token_due(1000.0, 2000.0, 1799.0)
    assert token_due(1000.0, 2000.0, 1800.0)
