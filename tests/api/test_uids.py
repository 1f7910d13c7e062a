from __future__ import annotations

import uuid

from sigma.api.uids import new_uid, new_uid_hex


def test_uids_are_distinct_random_version_4_uuids_across_pool_refills() -> None:
    uids = [new_uid() for _ in range(1000)]  # several refills of the 256-UID pool
    assert len(set(uids)) == len(uids)
    for text in uids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text
    hexes = {new_uid_hex() for _ in range(300)}
    assert len(hexes) == 300 and all(len(h) == 32 for h in hexes)
