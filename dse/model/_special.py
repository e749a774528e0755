"""Special functions without importing scipy at start-up (``dse evaluate`` stays fast).

The silicon model's harvesting yield is a regularized incomplete beta function with whole
arguments, a finite binomial sum; anything else goes to :func:`scipy.special.betainc`, imported
when first needed.
"""

from __future__ import annotations

import numpy as np

from dse.designs import FloatArray

MAX_TERMS = 1024
"""Largest ``b`` summed term by term; beyond it scipy evaluates the function."""


def betainc(a: FloatArray, b: FloatArray, x: FloatArray) -> FloatArray:
    """The regularized incomplete beta function I_x(a, b), element-wise.

    For whole ``a, b >= 1``: I_x(a, b) = P(Binomial(n, x) >= a) with n = a + b − 1, summed as
    Σ_{j<b} C(n, j)·(1 − x)^j·x^(n−j) with the ratio of successive terms (all terms positive,
    so the sum is accurate to a few ulp). Other arguments, or an x^n that underflows, use
    scipy.
    """
    a, b, x = np.broadcast_arrays(
        np.asarray(a, dtype=float), np.asarray(b, dtype=float), np.asarray(x, dtype=float)
    )
    n = a + b - 1.0
    whole = (a == np.round(a)) & (b == np.round(b)) & (a >= 1.0) & (b >= 1.0)
    inside = (x > 0.0) & (x <= 1.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        term = np.power(x, n)
        simple = whole & (b <= MAX_TERMS) & ((term > 1e-280) | (x == 0.0)) & (inside | (x == 0.0))
        if not simple.all():
            from scipy.special import betainc as scipy_betainc

            return np.where(simple, betainc(*(np.where(simple, v, 1.0) for v in (a, b, x))),
                            scipy_betainc(a, b, x))  # fmt: skip
        ratio = np.where(x > 0.0, (1.0 - x) / np.where(x > 0.0, x, 1.0), 0.0)
        total = term.copy()
        terms = int(np.max(b)) if b.size else 0
        for j in range(terms - 1):
            more = j + 1.0 < b
            term = np.where(more, term * ((n - j) / (j + 1.0)) * ratio, 0.0)
            total += term
    return np.minimum(total, 1.0)
