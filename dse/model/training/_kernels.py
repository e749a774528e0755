"""numba kernels of the bounded plan search's bookkeeping (dse.model.training.plan_search).

Imported only for chunks large enough to repay numba's import and (cached) compilation; the
physics stays in the numpy mechanisms. Each kernel loops over designs, so no ``(n, k)``
temporaries are made beyond the matrix of bounds itself.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from dse.model.training.plan_search import (
    BATCH_DP,
    CP,
    DP_STEP,
    EP,
    EP_OVER_TP,
    ETP,
    MICROBATCH,
    PINNED_DP,
    REPLICA,
    TP,
)

BLOCK = 16
"""Plans per block of a row of bounds: :func:`lower_bounds` keeps each block's least bound, so
that :func:`select` reads only the blocks that can hold a cell of its window."""
_LARGEST = np.finfo(np.float64).max
"""The largest finite bound: ``bound <= min(high, _LARGEST)`` is ``bound <= high`` and finite."""


@njit(cache=True, nogil=True, error_model="numpy")
def _hierarchical_copies(k: float, experts: float, domains: float) -> float:
    """§2.7 One copy per remote domain holding any of the token's ``k`` experts
    (collectives.dispatch_network_copies)."""
    missed = 1.0
    for j in range(int(k)):
        missed *= max(experts - experts / domains - j, 0.0) / (experts - j)
    return (domains - 1.0) * (1.0 - missed)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _data_parallel_ranks(
    chips: float, replica: float, batch_dp: float, pinned_dp: float, pinned: bool, step: float
) -> float:
    """§2.4 layout: D = min(⌊N/(t·p·c)⌋, ⌊B/b⌋) (or the pinned D), rounded down to whole
    expert groups of ``step`` ranks; 0 where not even one group fits."""
    searched = min(np.floor(chips / replica), batch_dp)
    dp = pinned_dp if pinned else searched
    return np.floor(dp / step) * step if dp >= step else 0.0


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _data_parallel_s_per_b(
    tp: float,
    weight_dp: float,
    inverse_weight_dp: float,
    domain: float,
    inverse_domain: float,
    inverse_up: float,
    inverse_out: float,
) -> float:
    """§2.7 Seconds per byte of the data-parallel collectives: the scale-up links where the
    ``tp·weight_dp`` ranks share a domain, else the domain's scale-out links in parallel."""
    per_domain = max(min(tp * inverse_domain, 1.0), inverse_weight_dp)
    return inverse_up if tp * weight_dp <= domain else max(inverse_up, inverse_out * per_domain)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _all_to_all_s(
    per_byte_s: float,
    ep: float,
    inverse_ep: float,
    experts_per_token: float,
    route_max_domains: float,
    hierarchical_experts: float | None,
    domain: float,
    inverse_up: float,
    inverse_out: float,
) -> float:
    """§2.7 A micro-batch's expert all-to-all on the stage (s): the copies beyond the domain on
    scale-out, the others on scale-up, both at once (plan_search.moe_lower_bound);
    ``per_byte_s`` is the plan's bytes coefficient."""
    remote = experts_per_token * (ep - min(ep, domain)) * inverse_ep
    if hierarchical_experts is not None:  # None (all-to-all) prunes this branch
        remote = _hierarchical_copies(experts_per_token, hierarchical_experts, ep / min(ep, domain))
    remote = min(remote, route_max_domains) if route_max_domains > 0.0 else remote
    local = max(experts_per_token * (ep - 1.0) * inverse_ep - remote, 0.0)
    return per_byte_s * max(local * inverse_up, remote * inverse_out)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _ring_latency(group: float, base_us: float, hop_us: float) -> float:
    """§2.7 At least the latency (s) of a ring collective over ``group`` ranks
    (plan_search._ring_latency_lower_bound)."""
    return (base_us + (group - 1.0) * hop_us) * 1e-6 if group > 1.0 else 0.0


@njit(cache=True, nogil=True, inline="always")
def _keep_within(
    row: np.ndarray, hi: float, i: int, design: np.ndarray, plan: np.ndarray, count: int
) -> int:
    """Append the cells of design ``i`` whose bound is at most ``hi``; the new count."""
    for p in range(row.shape[0]):
        if row[p] <= hi:
            design[count] = i
            plan[count] = p
            count += 1
    return count


@njit(cache=True, nogil=True, error_model="numpy")
def lower_bounds(
    features: np.ndarray,
    coefficients: np.ndarray,
    layout: np.ndarray,
    slots: np.ndarray,
    data_parallel: np.ndarray,
    memory: np.ndarray,
    moe: np.ndarray,
    moe_host: np.ndarray,
    experts_per_token: float,
    route_max_domains: float,
    hierarchical_experts: float | None,
    chips: np.ndarray,
    domain: np.ndarray,
    up_b_s: np.ndarray,
    out_b_s: np.ndarray,
    capacity_b: np.ndarray,
    low_precision: np.ndarray,
    latency_scale: np.ndarray,
    ring_latency_us: tuple[float, float],
    tp_searched: bool,
    pinned: bool,
    sequences: float,
    scale: float,
    first: float,
    bounds: np.ndarray,
    blocks: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(n, k)`` step-time bounds (infinite where the plan cannot run, or cannot fit by the
    memory bound of plan_search.memory_bounds: memory first); the first round's threshold per
    row (``first`` × its least bound); and the cells within it, row-major (design, plan).
    ``bounds`` is the ``(n, k)`` output and ``blocks`` the ``(n, ⌈k/BLOCK⌉)`` least bound of
    each block of :data:`BLOCK` plans (:func:`_block_minima`), both reused between calls: fresh
    pages cost more than the bounds themselves. One row per design (:func:`_design_bounds`);
    the plans' rows are taken from their matrices once, as tuples, so that no view is made per
    design."""
    n, k = features.shape[0], coefficients.shape[1]
    high = np.empty(n)
    design = np.empty(n * k, np.int64)
    plan = np.empty(n * k, np.int64)
    count = 0
    ep = layout[EP]
    plans = (
        (layout[REPLICA], layout[TP], layout[BATCH_DP], layout[DP_STEP], layout[PINNED_DP]),
        (layout[MICROBATCH], layout[CP], ep, layout[EP_OVER_TP]),
        (1.0 / layout[MICROBATCH], 1.0 / layout[CP], 1.0 / ep, 1.0 / layout[ETP]),
        (
            data_parallel[0],
            data_parallel[1],
            data_parallel[2],
            data_parallel[3],
            data_parallel[4],
            data_parallel[5],
            data_parallel[6],
        ),
        (memory[1], memory[2], memory[4], slots, moe),
        (coefficients[0], coefficients[1], coefficients[2], coefficients[3], coefficients[4]),
        (moe_host[0], moe_host[1], moe_host[2]),
    )
    dispatch = (experts_per_token, route_max_domains, sequences, scale, ring_latency_us)
    for i in range(n):
        # the activations of the format the design runs (memory_bounds' rows)
        held = (memory[0], memory[3]) if low_precision[i] else (memory[5], memory[6])
        design_i = (
            chips[i],
            max(domain[i], 1.0) if tp_searched else np.inf,
            domain[i],
            1.0 / up_b_s[i],
            1.0 / out_b_s[i],
            capacity_b[i],
            latency_scale[i],
        )
        _design_bounds(
            bounds[i], features[i], design_i, held, plans, dispatch, hierarchical_experts, pinned
        )
        high[i] = _block_minima(bounds[i], blocks[i]) * first
        if high[i] != np.inf:
            count = _keep_within(bounds[i], high[i], i, design, plan, count)
    return high, design[:count].copy(), plan[:count].copy()


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _design_bounds(
    row: np.ndarray,
    f: np.ndarray,
    design: tuple[float, float, float, float, float, float, float],
    held: tuple[np.ndarray, np.ndarray],
    plans: tuple,
    dispatch: tuple[float, float, float, float, tuple[float, float]],
    hierarchical_experts: float | None,
    pinned: bool,
) -> None:
    """Design ``f``'s bound of every plan into ``row``: the layout (plan_search.
    data_parallel_layout), the micro-batches and the data-parallel part (plan_search.
    data_parallel_lower_bound) follow the numpy code; the loop over plans has no branch (but
    loop-invariant ones), so that it runs on vector units. ``f``: five features
    (plan_search._design_features); ``design``: chips, the largest tp, the scale-up domain, the
    seconds per byte of its scale-up and scale-out links, the HBM bytes, the family's
    collective latency scale; ``held``: the plans' fixed and stored activation bytes in the
    design's format; ``plans`` the plan rows (the last, the MoE host-time rows of
    plan_search.moe_host_lower_bound); ``dispatch`` ends with NCCL's base and least hop
    latency (µs) for FSDP's rings."""
    chips, top_tp, domain, inverse_up, inverse_out, capacity, latency_scale = design
    fixed_b, stored_b = held
    (replica, tp, batch_dp, dp_step, pinned_dp), split, inverse, dp_bytes, state, c, host = plans
    microbatch, cp, ep, ep_over_tp = split
    inverse_microbatch, inverse_cp, inverse_ep, inverse_etp = inverse
    shared_b, expert_b, first_b, fsdp_b, expert_each_b, expert_fsdp_b, collectives = dp_bytes
    weight_b, expert_state_b, in_flight_cap, slots, moe = state
    experts_per_token, route_max_domains, sequences, scale, (base_us, hop_us) = dispatch
    host_s, expert_flops, expert_latency_s = host
    inverse_domain = 1.0 / domain
    for p in range(row.shape[0]):
        dp = _data_parallel_ranks(chips, replica[p], batch_dp[p], pinned_dp[p], pinned, dp_step[p])
        runs = (
            (dp >= 1.0)
            & (dp * replica[p] <= chips)
            & (dp * microbatch[p] <= sequences)
            & (tp[p] <= top_tp)
        )
        dp = max(dp, 1.0)
        inverse_dp = 1.0 / dp
        microbatches = sequences * inverse_dp * inverse_microbatch[p]
        weight_dp = dp * cp[p]
        inverse_weight_dp = inverse_dp * inverse_cp[p]
        inverse_bw = _data_parallel_s_per_b(
            tp[p], weight_dp, inverse_weight_dp, domain, inverse_domain, inverse_up, inverse_out
        )
        expert_inverse = min(ep_over_tp[p] * inverse_weight_dp, 1.0)
        # the experts' ranks are ep·etp apart: their ZeRO 0-2 and FSDP traffic over their own tier
        expert_inverse_bw = inverse_bw
        if experts_per_token > 0.0:
            expert_inverse_bw = _data_parallel_s_per_b(
                ep[p] / inverse_etp[p],
                1.0 / expert_inverse,
                expert_inverse,
                domain,
                inverse_domain,
                inverse_up,
                inverse_out,
            )
        ring_share = 1.0 - inverse_weight_dp
        per_step_s = (shared_b[p] + microbatches * first_b[p]) * ring_share * inverse_bw + (
            expert_b[p] + microbatches * expert_each_b[p]
        ) * (1.0 - expert_inverse) * expert_inverse_bw
        # FSDP: the step lasts at least as long as all its gathers and reduce-scatters
        # ... and each of them pays at least a ring's latency (plan_search._ring_latency_lower_bound)
        latency_s = _ring_latency(weight_dp, base_us, hop_us)
        if experts_per_token > 0.0:
            latency_s += _ring_latency(1.0 / expert_inverse, base_us, hop_us)
        fsdp_s = microbatches * (
            fsdp_b[p] * ring_share * inverse_bw
            + expert_fsdp_b[p] * (1.0 - expert_inverse) * expert_inverse_bw
            + collectives[p] * latency_scale * latency_s
        )
        stage = f[0] * c[0][p] + f[1] * c[1][p] + f[2] * c[2][p] + f[3] * c[3][p] + f[4] * c[4][p]
        if experts_per_token > 0.0:
            stage += _all_to_all_s(
                moe[p],
                ep[p],
                inverse_ep[p],
                experts_per_token,
                route_max_domains,
                hierarchical_experts,
                max(domain * inverse_etp[p], 1.0),  # the ep ranks of a group are etp apart
                inverse_up,
                inverse_out,
            )
            # the MoE layers' host time beyond the experts' GEMMs (plan_search.moe_host_lower_bound)
            stage += max(host_s[p] - (f[0] * expert_flops[p] + expert_latency_s[p]), 0.0)
        value = (max(stage * (microbatches + slots[p]), fsdp_s) + per_step_s) * scale
        least_b = (
            fixed_b[p]
            + weight_b[p] * inverse_weight_dp
            + expert_state_b[p] * expert_inverse
            + min(in_flight_cap[p], microbatches) * stored_b[p]
        )
        row[p] = value if runs & (least_b * scale <= capacity) else np.inf


@njit(cache=True, nogil=True, inline="always")
def _block_minima(row: np.ndarray, blocks: np.ndarray) -> float:
    """The least value of each block of :data:`BLOCK` plans of ``row`` into ``blocks``; the
    least of ``row`` (the least of the blocks')."""
    least = np.inf
    for b in range(blocks.shape[0]):
        start = b * BLOCK
        stop = min(start + BLOCK, row.shape[0])
        m = np.inf
        for p in range(start, stop):
            m = min(m, row[p])
        blocks[b] = m
        least = min(least, m)
    return least


@njit(cache=True, nogil=True)
def select(
    bounds: np.ndarray, blocks: np.ndarray, low: np.ndarray, high: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The cells with ``low < bound <= high`` (finite) of their row, row-major; one pass, into
    buffers of every cell's size whose untouched pages cost nothing. Only the blocks of
    :data:`BLOCK` plans whose least bound (``blocks``, at most the least of the block: bounds
    raised since :func:`lower_bounds` only skip fewer) is within ``high`` are read, so a round
    reads a small part of the bounds."""
    n, k = bounds.shape
    design = np.empty(n * k, np.int64)
    plan = np.empty(n * k, np.int64)
    c = 0
    for i in range(n):
        lo, hi = low[i], min(high[i], _LARGEST)
        if not hi > lo:
            continue
        row = bounds[i]
        for b in range(blocks.shape[1]):
            if not blocks[i, b] <= hi:
                continue
            for p in range(b * BLOCK, min(b * BLOCK + BLOCK, k)):
                if lo < row[p] <= hi:
                    design[c] = i
                    plan[c] = p
                    c += 1
    return design[:c].copy(), plan[:c].copy()


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
