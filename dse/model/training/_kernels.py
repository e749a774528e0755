"""numba kernels of the bounded plan search's bookkeeping (dse.model.training.plan_search).

Imported only for chunks large enough to repay numba's import and (cached) compilation; the
physics stays in the numpy mechanisms. Each kernel loops over designs, so no ``(n, k)``
temporaries are made beyond the matrix of bounds itself.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def lower_bounds(
    features: np.ndarray,
    coefficients: np.ndarray,
    replica_batches: np.ndarray,
    slots: np.ndarray,
    replica: np.ndarray,
    tp: np.ndarray,
    chips: np.ndarray,
    domain: np.ndarray,
    tp_searched: bool,
    scale: float,
    first: float,
    memory: np.ndarray,
    capacity_b: np.ndarray,
    bounds: np.ndarray,
    dp_bytes: np.ndarray,
    dp_bytes_per_mb: np.ndarray,
    batch_dp: np.ndarray,
    cp: np.ndarray,
    up_b_s: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(n, k)`` step-time bounds (infinite where the plan cannot run, or cannot fit by the
    memory bound of plan_search.memory_bounds: memory first); the first round's threshold per
    row (``first`` × its least bound); and the cells within it, row-major (design, plan).
    ``bounds`` is the ``(n, k)`` output, reused between calls: fresh pages cost more than the
    bounds themselves. ``dp_bytes``, ``dp_bytes_per_mb``, ``batch_dp``, ``cp`` and ``up_b_s``
    give the data-parallel part (plan_search.data_parallel_lower_bound)."""
    n, j_terms = features.shape
    k = coefficients.shape[1]
    high = np.empty(n)
    design = np.empty(n * k, np.int64)
    plan = np.empty(n * k, np.int64)
    count = 0
    for i in range(n):
        row = bounds[i]
        f0 = features[i, 0]
        for p in range(k):
            row[p] = f0 * coefficients[0, p]
        for j in range(1, j_terms):
            f = features[i, j]
            for p in range(k):
                row[p] += f * coefficients[j, p]
        top_tp = max(domain[i], 1.0) if tp_searched else np.inf
        inverse_chips = 1.0 / chips[i]
        low = np.inf
        capacity = capacity_b[i]
        chips_i = chips[i]
        for p in range(k):
            fewest = max(inverse_chips * replica_batches[p], 1.0)
            value = row[p] * (fewest + slots[p])
            per_step = dp_bytes[p] + fewest * dp_bytes_per_mb[p]
            if per_step > 0.0:
                dp = max(min(np.floor(chips[i] / replica[p]), batch_dp[p]), 1.0)
                value += per_step * (1.0 - 1.0 / (dp * cp[p])) / up_b_s[i]
            value *= scale
            shards = fewest * memory[5, p]  # 1 / (c·D_hi)
            least_b = (
                memory[0, p]
                + memory[1, p] * shards
                + memory[2, p] * min(shards * memory[6, p], 1.0)
                + min(memory[4, p], fewest) * memory[3, p]
            )
            cannot = (replica[p] > chips_i) | (tp[p] > top_tp) | (least_b * scale > capacity)
            row[p] = np.inf if cannot else value
        for p in range(k):
            low = min(low, row[p])
        hi = low * first
        high[i] = hi
        if hi == np.inf:
            continue
        for p in range(k):
            if row[p] <= hi:
                design[count] = i
                plan[count] = p
                count += 1
    return high, design[:count].copy(), plan[:count].copy()


@njit(cache=True, nogil=True)
def select(bounds: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cells with ``low < bound <= high`` (finite) of their row, row-major."""
    n, k = bounds.shape
    count = 0
    for i in range(n):
        lo, hi = low[i], high[i]
        if not hi > lo:
            continue
        for p in range(k):
            v = bounds[i, p]
            if lo < v <= hi and v != np.inf:
                count += 1
    design = np.empty(count, np.int64)
    plan = np.empty(count, np.int64)
    c = 0
    for i in range(n):
        lo, hi = low[i], high[i]
        if not hi > lo:
            continue
        for p in range(k):
            v = bounds[i, p]
            if lo < v <= hi and v != np.inf:
                design[c] = i
                plan[c] = p
                c += 1
    return design, plan


@njit(cache=True, nogil=True)
def update(
    design: np.ndarray,
    plan: np.ndarray,
    step_s: np.ndarray,
    fits: np.ndarray,
    valid: np.ndarray,
    over: np.ndarray,
    best_s: np.ndarray,
    best_plan: np.ndarray,
    least_over: np.ndarray,
    least_plan: np.ndarray,
) -> None:
    """Fold evaluated cells into each design's best plan that fits and its valid plan needing
    least memory; ties go to the lower plan index, as ``argmin`` breaks them."""
    for c in range(design.shape[0]):
        i, p = design[c], plan[c]
        if fits[c]:
            s = step_s[c]
            if s < best_s[i] or (s == best_s[i] and p < best_plan[i]):
                best_s[i] = s
                best_plan[i] = p
        if valid[c]:
            o = over[c]
            if o < least_over[i] or (o == least_over[i] and p < least_plan[i]):
                least_over[i] = o
                least_plan[i] = p
