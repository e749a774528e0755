"""dse.model._special.betainc (no scipy at start-up) against scipy's."""

from __future__ import annotations

import numpy as np
from scipy.special import betainc as scipy_betainc

from dse.model._special import betainc


def test_betainc_with_whole_arguments_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    spares = rng.integers(0, 40, 20_000).astype(float)
    units = spares + 1.0 + rng.integers(0, 300, 20_000)
    x = np.concatenate([rng.uniform(0.5, 1.0, 10_000), rng.uniform(0.0, 1.0, 10_000)])
    a, b = units - spares, spares + 1.0
    np.testing.assert_allclose(betainc(a, b, x), scipy_betainc(a, b, x), rtol=1e-12, atol=1e-15)


def test_betainc_edges_and_other_arguments_fall_back_to_scipy() -> None:
    a = np.array([3.0, 1.0, 2.5, 4.0, 5.0, 2000.0])
    b = np.array([2.0, 1.0, 1.5, 2000.0, 1.0, 3.0])
    x = np.array([1.0, 0.0, 0.3, 0.7, 1e-80, 0.5])
    np.testing.assert_allclose(betainc(a, b, x), scipy_betainc(a, b, x), rtol=1e-12, atol=1e-300)
