"""The prod fleet: pods dealt over the curves, and a share of them for a search sample."""

from __future__ import annotations

import numpy as np

from sigma.sim.prod import ProdCurves, build_fleet


def test_select_keeps_the_chosen_pods_with_their_curves_and_requests() -> None:
    curves = ProdCurves(300.0, np.array([[0.2, 0.4], [0.1, 0.3]]), np.full((2, 2), 0.5), "two curves")
    fleet = build_fleet(curves, 3, 8000, 100, 0.5, request_ratio=2.0)  # 6 pods, curves 0 1 0 1 0 1
    part = fleet.select(np.array([1, 4]))
    assert part.count == 2 and list(part.curve) == [1, 0]
    assert list(part.cpu_request) == [fleet.cpu_request[1], fleet.cpu_request[4]]
    assert part.request_ratio == 2.0 and part.share == fleet.share
